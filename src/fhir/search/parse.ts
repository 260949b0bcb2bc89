import type { FhirDefinitions, SearchParamDef } from '../definitions.js';
import { badRequest, FhirError } from '../outcome.js';
import { parseElements, parseSummary } from '../summary.js';
import { FORMAT_PARAMETERS } from '../types.js';
import type { IncludeRule, SearchCursor, SearchFilter, SearchRequest, SortRule } from './types.js';

export interface ParseOptions {
  /** Prefer: handling=lenient — unknown parameters are ignored and reported as warnings, not rejected. */
  lenient: boolean;
  defaultCount: number;
  maxCount: number;
  /** This server's FHIR base: reference values under it name local resources. */
  baseUrl: string;
}

/** Parameters that control the result set rather than filter it (FHIR R4 §3.1.1.5). */
const RESULT_PARAMS = new Set(['_count', '_offset', '_cursor', '_sort', '_total', '_summary', '_elements', '_include', '_revinclude', '_contained', '_containedType', ...FORMAT_PARAMETERS]);
const SPECIAL_CODES = new Set(['_id', '_lastUpdated', '_text', '_content']);

/**
 * Parses a FHIR search query into a SearchRequest, checking every parameter against the
 * SearchParameters the server knows for the type, so a typo is a 400, never a silently wider result.
 */
export function parseSearch(
  defs: FhirDefinitions,
  resourceType: string,
  query: Iterable<[string, string]>,
  options: ParseOptions,
): SearchRequest {
  const req: SearchRequest = {
    resourceType,
    filters: [],
    sort: [],
    count: options.defaultCount,
    offset: 0,
    include: [],
    revinclude: [],
    warnings: [],
    canonicalQuery: '',
  };
  const canonical = new URLSearchParams();
  const unknown = (name: string, why: string): void => {
    if (!options.lenient) {
      throw badRequest(`${why} (send Prefer: handling=lenient to ignore unknown parameters)`, name);
    }
    req.warnings.push(why);
  };

  for (const [rawKey, value] of query) {
    const key = rawKey.trim();
    const base = key.split(':')[0];
    if (key !== '_offset' && key !== '_cursor') {
      canonical.append(key, value);
    }
    if (RESULT_PARAMS.has(base) && base !== '_include' && base !== '_revinclude') {
      parseResultParam(defs, req, key, value, options);
      continue;
    }
    if (base === '_include' || base === '_revinclude') {
      const iterate = key.endsWith(':iterate') || key.endsWith(':recurse');
      const rules = parseInclude(defs, base, value, iterate, base === '_include' ? resourceType : undefined);
      (base === '_include' ? req.include : req.revinclude).push(...rules);
      continue;
    }
    try {
      const filter = parseFilter(defs, resourceType, key, value);
      if (filter) {
        req.filters.push(filter);
      } else {
        unknown(key, `Unknown search parameter "${key}" for ${resourceType}`);
      }
    } catch (err) {
      if (err instanceof FhirError && options.lenient && err.status === 400) {
        req.warnings.push(err.message);
        continue;
      }
      throw err;
    }
  }
  req.canonicalQuery = canonical.toString();
  req.filters = localizeReferences(req.filters, options.baseUrl);
  return req;
}

function parseResultParam(defs: FhirDefinitions, req: SearchRequest, key: string, value: string, options: ParseOptions): void {
  switch (key) {
    case '_count': {
      const n = parseNonNegativeInt(value, '_count');
      if (n === 0) {
        req.summary = 'count';
      }
      req.count = Math.min(n, options.maxCount);
      return;
    }
    case '_offset':
      req.offset = parseNonNegativeInt(value, '_offset');
      return;
    case '_cursor':
      req.cursor = decodeCursor(value);
      return;
    case '_total':
      if (value !== 'none' && value !== 'estimate' && value !== 'accurate') {
        throw badRequest(`_total must be none, estimate or accurate, got "${value}"`, '_total');
      }
      req.total = value;
      return;
    case '_summary':
      req.summary = parseSummary(value, true);
      return;
    case '_elements':
      req.elements = parseElements(value);
      return;
    case '_sort':
      req.sort = value.split(',').map((s) => parseSort(defs, req.resourceType, s.trim()));
      return;
    case '_format':
    case '_pretty':
      return; // content negotiation is handled by the HTTP layer
    default:
      throw badRequest(`Search result parameter ${key} is not supported`, key);
  }
}

/** Cursors are opaque to clients: base64url JSON of the direction and the sort key values. */
export function encodeCursor(cursor: SearchCursor): string {
  return Buffer.from(JSON.stringify([cursor.direction === 'next' ? 'n' : 'p', ...cursor.values])).toString('base64url');
}

function decodeCursor(value: string): SearchCursor {
  try {
    const [d, ...values] = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as unknown[];
    if ((d === 'n' || d === 'p') && values.length >= 1 && values.every((v) => v === null || typeof v === 'string')) {
      return { direction: d === 'n' ? 'next' : 'previous', values: values as (string | null)[] };
    }
  } catch {
    // fall through to the error below
  }
  throw badRequest('_cursor is not a cursor this server issued: follow the links of a search Bundle', '_cursor');
}

function parseNonNegativeInt(value: string, name: string): number {
  if (!/^\d{1,9}$/.test(value)) {
    throw badRequest(`${name} must be a non-negative integer, got "${value}"`, name);
  }
  return Number(value);
}

function parseSort(defs: FhirDefinitions, resourceType: string, key: string): SortRule {
  const descending = key.startsWith('-');
  const code = descending ? key.slice(1) : key;
  if (code === '_id' || code === '_lastUpdated') {
    return { param: code, descending };
  }
  const param = defs.getSearchParam(resourceType, code);
  if (!param || param.type === 'composite' || !param.expression) {
    throw badRequest(`Cannot sort ${resourceType} by unknown parameter "${code}"`, '_sort');
  }
  return { param, descending };
}

function parseInclude(defs: FhirDefinitions, name: string, value: string, iterate: boolean, searchedType: string | undefined): IncludeRule[] {
  const [sourceType, code, targetType] = value.split(':');
  if (!sourceType || !code || !defs.isResourceType(sourceType)) {
    throw badRequest(`${name} must be SourceType:parameter[:TargetType], got "${value}"`, name);
  }
  if (searchedType && !iterate && sourceType !== searchedType) {
    throw badRequest(`_include=${value} must start with the searched type ${searchedType} (use _include:iterate for others)`, '_include');
  }
  if (targetType && !defs.isResourceType(targetType)) {
    throw badRequest(`Unknown target type ${targetType} in ${name}=${value}`, name);
  }
  const params =
    code === '*'
      ? [...defs.getSearchParams(sourceType).values()].filter((p) => p.type === 'reference')
      : [defs.getSearchParam(sourceType, code)];
  return params.map((param) => {
    if (!param || param.type !== 'reference') {
      throw badRequest(`${sourceType}:${code} is not a reference search parameter`, name);
    }
    return { sourceType, param, targetType, iterate };
  });
}

/** Splits on every `separator` that is not escaped with a backslash, keeping the escapes. */
function splitUnescaped(value: string, separator: string): string[] {
  const out: string[] = [];
  let current = '';
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '\\' && i + 1 < value.length) {
      current += value[i] + value[i + 1];
      i++;
    } else if (value[i] === separator) {
      out.push(current);
      current = '';
    } else {
      current += value[i];
    }
  }
  out.push(current);
  return out;
}

/** Resolves the escapes \, \$ and \\ (R4 §3.1.1.1.9); \| stays escaped for the token parser. */
function unescapeValue(value: string): string {
  return value.replace(/\\([,$\\])/g, '$1');
}

/** The ORed values of a parameter: split on unescaped commas, escapes resolved. */
export function splitValues(value: string): string[] {
  return splitUnescaped(value, ',').map(unescapeValue);
}

function parseFilter(defs: FhirDefinitions, resourceType: string, key: string, value: string): SearchFilter | undefined {
  if (key.startsWith('_has:')) {
    const [, sourceType, refCode, ...rest] = key.split(':');
    const restKey = rest.join(':');
    if (!sourceType || !refCode || !restKey || !defs.isResourceType(sourceType)) {
      throw badRequest(`_has must be _has:Type:reference:parameter, got "${key}"`, key);
    }
    const referenceParam = defs.getSearchParam(sourceType, refCode);
    if (!referenceParam || referenceParam.type !== 'reference') {
      throw badRequest(`${sourceType}.${refCode} is not a reference search parameter`, key);
    }
    const filter = parseFilter(defs, sourceType, restKey, value);
    if (!filter) {
      throw badRequest(`Unknown search parameter "${restKey}" for ${sourceType}`, key);
    }
    return { kind: 'has', sourceType, referenceParam, filter };
  }

  const dot = key.indexOf('.');
  if (dot > 0) {
    const [code, typeModifier] = key.slice(0, dot).split(':');
    const param = defs.getSearchParam(resourceType, code);
    if (!param || param.type !== 'reference') {
      throw badRequest(`Cannot chain through "${code}": it is not a reference parameter of ${resourceType}`, key);
    }
    const rest = key.slice(dot + 1);
    const restCode = rest.split(/[.:]/)[0];
    const candidates = typeModifier ? [typeModifier] : param.target;
    const targetTypes = candidates.filter((t) => defs.isResourceType(t) && (SPECIAL_CODES.has(restCode) || defs.getSearchParam(t, restCode)));
    if (targetTypes.length === 0) {
      throw badRequest(`Chained parameter "${rest}" is not defined on ${candidates.join(' or ') || 'the target type'}`, key);
    }
    const filter = parseFilter(defs, targetTypes[0], rest, value);
    if (!filter) {
      throw badRequest(`Unknown chained parameter "${rest}"`, key);
    }
    return { kind: 'chain', param, targetTypes, filter };
  }

  const [code, modifier] = key.split(':');
  const values = splitValues(value);
  if (SPECIAL_CODES.has(code)) {
    if (code === '_id' && modifier && modifier !== 'not' && modifier !== 'missing') {
      throw badRequest(`Modifier :${modifier} is not supported on _id`, key);
    }
    return { kind: 'special', code: code as '_id', modifier, values };
  }
  const param = defs.getSearchParam(resourceType, code);
  if (!param) {
    return undefined;
  }
  if (param.components) {
    if (modifier) {
      throw badRequest(`Modifier :${modifier} is not supported on composite parameter ${code}`, key);
    }
    const parts = splitUnescaped(value, ',').map((v) => splitUnescaped(v, '$').map(unescapeValue));
    const wanted = param.components.length;
    if (parts.some((p) => p.length !== wanted || p.some((c) => c === ''))) {
      throw badRequest(`${code} takes ${wanted} values joined by $, e.g. ${param.components.map((c) => `<${c.type}>`).join('$')}`, key);
    }
    return { kind: 'composite', param, values: parts };
  }
  if (values.some((v) => v === '') && modifier !== 'missing') {
    throw badRequest(`Empty value for search parameter ${key}`, key);
  }
  return { kind: 'value', param: param as SearchParamDef, modifier, values };
}

/**
 * A reference search value that is an absolute URL on this server's base names a local resource
 * (R4 §3.1.1.4.6): strip the base so it matches relative and absolute references alike.
 */
function localizeReferences(filters: SearchFilter[], baseUrl: string): SearchFilter[] {
  const prefix = baseUrl.replace(/\/$/, '') + '/';
  const localize = (f: SearchFilter): SearchFilter => {
    switch (f.kind) {
      case 'value':
        return f.param.type === 'reference' ? { ...f, values: f.values.map((v) => (v.startsWith(prefix) ? v.slice(prefix.length) : v)) } : f;
      case 'chain':
      case 'has':
        return { ...f, filter: localize(f.filter) };
      default:
        return f;
    }
  };
  return filters.map(localize);
}
