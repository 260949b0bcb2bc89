/**
 * Exact TreeSHAP (path-dependent; Lundberg et al., Nat Mach Intell 2020, Algorithm 2) for a
 * gradient-boosted tree ensemble in margin space. Matches XGBoost's pred_contribs: the values plus
 * the bias (base margin + each tree's cover-weighted mean) sum to the model's margin.
 */

export interface TreeNode {
  id: number;
  /** Column index of the split feature; absent on leaves. */
  feature?: number;
  threshold?: number;
  yes?: number;
  no?: number;
  missing?: number;
  leaf?: number;
  cover: number;
}

export interface TreeEnsemble {
  baseMargin: number;
  trees: { nodes: TreeNode[] }[];
}

interface PathElement {
  feature: number;
  zero: number;
  one: number;
  weight: number;
}

/** Nodes indexed by id, plus each subtree's cover-weighted mean leaf value (its expected output). */
interface IndexedTree {
  nodes: Map<number, TreeNode>;
  expected: number;
}

export class TreeExplainer {
  private readonly trees: IndexedTree[];
  private readonly baseMargin: number;
  /** The bias term: what the contributions start from. */
  readonly expectedMargin: number;

  constructor(ensemble: TreeEnsemble) {
    this.baseMargin = ensemble.baseMargin;
    this.trees = ensemble.trees.map((tree) => {
      const nodes = new Map(tree.nodes.map((n) => [n.id, n]));
      return { nodes, expected: meanValue(nodes, 0) };
    });
    this.expectedMargin = ensemble.baseMargin + this.trees.reduce((s, t) => s + t.expected, 0);
  }

  /** The margin the ensemble predicts for x (NaN = missing). */
  margin(x: readonly number[]): number {
    let margin = this.baseMargin;
    for (const tree of this.trees) {
      let node = tree.nodes.get(0)!;
      while (node.leaf === undefined) node = tree.nodes.get(next(node, x))!;
      margin += node.leaf;
    }
    return margin;
  }

  /** One contribution per feature; they sum to margin(x) − expectedMargin. */
  shap(x: readonly number[], features: number): number[] {
    const phi = new Array<number>(features).fill(0);
    for (const tree of this.trees) {
      recurse(tree.nodes, 0, x, phi, [], 0, 1, 1, -1);
    }
    return phi;
  }
}

function next(node: TreeNode, x: readonly number[]): number {
  const value = x[node.feature!];
  if (Number.isNaN(value)) return node.missing!;
  // XGBoost compares single-precision values.
  return Math.fround(value) < Math.fround(node.threshold!) ? node.yes! : node.no!;
}

function meanValue(nodes: Map<number, TreeNode>, id: number): number {
  const node = nodes.get(id)!;
  if (node.leaf !== undefined) return node.leaf;
  const yes = nodes.get(node.yes!)!;
  const no = nodes.get(node.no!)!;
  return (meanValue(nodes, yes.id) * yes.cover + meanValue(nodes, no.id) * no.cover) / (yes.cover + no.cover);
}

function recurse(
  nodes: Map<number, TreeNode>,
  id: number,
  x: readonly number[],
  phi: number[],
  parentPath: readonly PathElement[],
  depth: number,
  zero: number,
  one: number,
  feature: number,
): void {
  const path = parentPath.slice(0, depth).map((e) => ({ ...e }));
  extend(path, depth, zero, one, feature);
  const node = nodes.get(id)!;
  if (node.leaf !== undefined) {
    for (let i = 1; i <= depth; i++) {
      const w = unwoundPathSum(path, depth, i);
      phi[path[i].feature] += w * (path[i].one - path[i].zero) * node.leaf;
    }
    return;
  }
  const hot = next(node, x);
  const cold = hot === node.yes ? node.no! : node.yes!;
  const cover = node.cover;
  let incomingZero = 1;
  let incomingOne = 1;
  let uniqueDepth = depth;
  const seen = path.findIndex((e, k) => k > 0 && k <= uniqueDepth && e.feature === node.feature);
  if (seen > 0) {
    incomingZero = path[seen].zero;
    incomingOne = path[seen].one;
    unwind(path, uniqueDepth, seen);
    uniqueDepth -= 1;
  }
  recurse(nodes, hot, x, phi, path, uniqueDepth + 1, (nodes.get(hot)!.cover / cover) * incomingZero, incomingOne, node.feature!);
  recurse(nodes, cold, x, phi, path, uniqueDepth + 1, (nodes.get(cold)!.cover / cover) * incomingZero, 0, node.feature!);
}

function extend(path: PathElement[], depth: number, zero: number, one: number, feature: number): void {
  path[depth] = { feature, zero, one, weight: depth === 0 ? 1 : 0 };
  for (let i = depth - 1; i >= 0; i--) {
    path[i + 1].weight += (one * path[i].weight * (i + 1)) / (depth + 1);
    path[i].weight = (zero * path[i].weight * (depth - i)) / (depth + 1);
  }
}

function unwind(path: PathElement[], depth: number, index: number): void {
  const { one, zero } = path[index];
  let nextOne = path[depth].weight;
  for (let i = depth - 1; i >= 0; i--) {
    if (one !== 0) {
      const tmp = path[i].weight;
      path[i].weight = (nextOne * (depth + 1)) / ((i + 1) * one);
      nextOne = tmp - (path[i].weight * zero * (depth - i)) / (depth + 1);
    } else {
      path[i].weight = (path[i].weight * (depth + 1)) / (zero * (depth - i));
    }
  }
  for (let i = index; i < depth; i++) {
    path[i] = { ...path[i + 1], weight: path[i].weight };
  }
  path.length = depth;
}

function unwoundPathSum(path: readonly PathElement[], depth: number, index: number): number {
  const { one, zero } = path[index];
  let nextOne = path[depth].weight;
  let total = 0;
  for (let i = depth - 1; i >= 0; i--) {
    if (one !== 0) {
      const tmp = (nextOne * (depth + 1)) / ((i + 1) * one);
      total += tmp;
      nextOne = path[i].weight - tmp * zero * ((depth - i) / (depth + 1));
    } else {
      total += path[i].weight / zero / ((depth - i) / (depth + 1));
    }
  }
  return total;
}
