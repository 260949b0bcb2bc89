/**
 * The models the server knows: every models/<name>/ folder with a card.json (published instruments
 * and ML models alike), and the ML models among them (model.json + ONNX) loaded and ready.
 * reload() picks up new or changed versions without a restart; a model that fails to load keeps
 * its previous version serving.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../logger.js';
import { MlModel } from './ml-model.js';
import type { ModelMonitor } from './model-monitor.js';

/** What /models lists of a card; the card holds much more (TRIPOD+AI items). */
export interface ModelCardHeader {
  name: string;
  title?: string;
  version?: string;
  kind?: string;
  condition?: string;
  researchGrade?: boolean;
}

export interface ModelCard extends ModelCardHeader {
  [key: string]: unknown;
}

export interface ModelSummary extends ModelCardHeader {
  loaded: boolean;
}

export interface ReloadReport {
  loaded: string[];
  unchanged: string[];
  removed: string[];
  failed: { name: string; error: string }[];
}

export class ModelRegistry {
  private cards = new Map<string, ModelCard>();
  private readonly models = new Map<string, { model: MlModel; stamp: string }>();

  constructor(
    private readonly root: string,
    readonly monitor: ModelMonitor,
    private readonly logger: Logger,
  ) {}

  /** ML models for a condition (all when none is given). */
  ml(condition?: string): MlModel[] {
    return [...this.models.values()].map((m) => m.model).filter((m) => condition === undefined || m.spec.condition === condition);
  }

  list(): ModelSummary[] {
    return [...this.cards.values()]
      .map((card) => ({
        name: card.name,
        title: card.title,
        version: card.version,
        kind: card.kind,
        condition: card.condition,
        researchGrade: card.researchGrade,
        loaded: card.kind !== 'ml-ensemble' || this.models.has(card.name),
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  card(name: string): ModelCard | undefined {
    return this.cards.get(name);
  }

  cardMarkdown(name: string): string | undefined {
    const path = join(this.root, name, 'card.md');
    return this.cards.has(name) && existsSync(path) ? readFileSync(path, 'utf8') : undefined;
  }

  async reload(): Promise<ReloadReport> {
    const report: ReloadReport = { loaded: [], unchanged: [], removed: [], failed: [] };
    const dirs = existsSync(this.root) ? readdirSync(this.root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name) : [];
    const cards = new Map<string, ModelCard>();
    for (const name of dirs) {
      const cardPath = join(this.root, name, 'card.json');
      if (existsSync(cardPath)) {
        try {
          cards.set(name, { ...(JSON.parse(readFileSync(cardPath, 'utf8')) as ModelCard), name });
        } catch (err) {
          report.failed.push({ name, error: `card.json: ${(err as Error).message}` });
        }
      }
      const specPath = join(this.root, name, 'model.json');
      if (!existsSync(specPath)) continue;
      const stamp = stampOf(join(this.root, name));
      if (this.models.get(name)?.stamp === stamp) {
        report.unchanged.push(name);
        continue;
      }
      try {
        const model = await MlModel.load(join(this.root, name));
        this.models.set(name, { model, stamp });
        this.monitor.track(name, model.spec.features);
        report.loaded.push(`${name}@${model.spec.version}`);
      } catch (err) {
        report.failed.push({ name, error: (err as Error).message });
        this.logger.warn({ model: name, err: (err as Error).message }, 'model failed to load; the previous version (if any) keeps serving');
      }
    }
    for (const name of [...this.models.keys()]) {
      if (!dirs.includes(name) || !existsSync(join(this.root, name, 'model.json'))) {
        this.models.delete(name);
        this.monitor.untrack(name);
        report.removed.push(name);
      }
    }
    this.cards = cards;
    return report;
  }
}

/** Changes whenever any file of the model folder changes. */
function stampOf(dir: string): string {
  return readdirSync(dir)
    .sort()
    .map((file) => {
      const stat = statSync(join(dir, file));
      return `${file}:${stat.size}:${stat.mtimeMs}`;
    })
    .join('|');
}
