import type { SearchParamDef } from '../fhir/definitions.js';
import { badRequest } from '../fhir/outcome.js';
import { expandValueSet } from '../fhir/terminology.js';
import { canonicalQuantity, dateRange, type DateRange, type NumberRange, numberRange } from '../fhir/search/ranges.js';
import type { Prefix, SearchFilter, SearchRequest, SortRule } from '../fhir/search/types.js';
import { normalizeString } from './search-index.js';

/**
 * Compiles a parsed FHIR search into ONE SQL statement over the resource table and the
 * per-type search-index tables (see searchFrom for how the filters drive it); chains and _has
 * nest the same compiler over another alias, so they compose to any depth.
 */
class Sql {
  readonly params: unknown[] = [];
  private aliasCounter = 0;

  p(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  alias(prefix: string): string {
    return `${prefix}${++this.aliasCounter}`;
  }
}

const COLUMNS = 'r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, r.content';

/** One ORDER BY key: the _sort keys, then the id, which makes the order total. */
interface SortKey {
  expression: string;
  descending: boolean;
  /** SQL type of the key's values, to compare a cursor's text values with. */
  type: 'text' | 'timestamptz' | 'numeric';
  /** A column of the resource row, never null. */
  column?: true;
}

/**
 * The page's rows, each with its sort key values (sort_0 … sort_n) for the cursor of the next or
 * previous page. A cursor turns into a keyset condition ("after/before this key"), and a previous
 * page is read in reverse order (the caller puts it back).
 */
export function compileSearch(req: SearchRequest, types: readonly string[] | undefined = req.acrossTypes): { text: string; params: unknown[] } {
  const sql = new Sql();
  const offset = req.cursor ? 0 : req.offset;
  if (!types) {
    const page = pageQuery(sql, req, req.resourceType);
    return { text: `${page.text} LIMIT ${sql.p(req.count)} OFFSET ${sql.p(offset)}`, params: sql.params };
  }
  // No index orders rows across types, so one plan over all of them reads and sorts every match.
  // Each type's first rows come from a plan of its own instead (in index order, stopping early), and
  // the merge sorts only those: over 61k resources of 6 types, the first page of the 6 took 1-2 ms
  // to plan and execute, against 84 ms to execute, which grows with the data. `types` may leave out
  // some of the searched types (those with no rows): the sort key stays that of the search.
  const perType = sql.p(req.count + offset);
  const pages = types.map((type) => pageQuery(sql, req, type));
  return {
    text: `SELECT * FROM (${pages.map((page) => `(${page.text} LIMIT ${perType})`).join(' UNION ALL ')}) u
      ORDER BY ${pages[0].order} LIMIT ${sql.p(req.count)} OFFSET ${sql.p(offset)}`,
    params: sql.params,
  };
}

/** The matches of one type in the search's order (ORDER BY `order`, over the sort_i columns), to be limited by the caller. */
function pageQuery(sql: Sql, req: SearchRequest, type: string): { text: string; order: string } {
  const keys = sortKeys(sql, req, 'r');
  const backwards = req.cursor?.direction === 'previous';
  let bound: IdBound | undefined;
  let keyset = '';
  if (req.cursor) {
    if (req.cursor.values.length !== keys.length) {
      throw badRequest('_cursor does not belong to this search (its sort changed): start again from the first page', '_cursor');
    }
    keyset = ` AND ${keysetCondition(sql, keys, req.cursor.values, backwards ? 'before' : 'after')}`;
    const first = req.cursor.values[0];
    if (keys[0].expression === 'r.id' && first !== null) {
      // Every row past the cursor has an id on the cursor's side of it, when the id leads the order.
      bound = { op: keys[0].descending !== backwards ? '<=' : '>=', id: first };
    }
  }
  const { from, where } = searchFrom(sql, req, 'r', type, bound);
  const select = keys.map((k, i) => `${k.expression} AS sort_${i}`).join(', ');
  const order = keys.map((k, i) => `sort_${i} ${orderDirection(k, backwards)}`).join(', ');
  return { text: `SELECT ${COLUMNS}, ${select} FROM ${from} WHERE ${where}${keyset} ORDER BY ${order}`, order };
}

function orderDirection(key: SortKey, backwards: boolean): string {
  const direction = key.descending !== backwards ? 'DESC' : 'ASC';
  if (key.column) {
    // No nulls: the plain direction, which an index read backwards serves too (DESC NULLS LAST does
    // not match it, so Observation?_sort=-_lastUpdated sorted every Observation: 55 ms against 0.2).
    return direction;
  }
  // Nulls sort last going forward, so they come first when the order is reversed.
  return `${direction} NULLS ${backwards ? 'FIRST' : 'LAST'}`;
}

/** Rows strictly after (or before) the row whose sort key is `values`, in the search's order with nulls last. */
function keysetCondition(sql: Sql, keys: SortKey[], values: (string | null)[], toward: 'after' | 'before'): string {
  const param = (i: number): string => `${sql.p(values[i])}::${keys[i].type}`;
  const alternatives = keys.map((key, i) => {
    const equalBefore = keys.slice(0, i).map((k, j) => `${k.expression} IS NOT DISTINCT FROM ${param(j)}`);
    let beyond: string;
    if (values[i] === null) {
      beyond = toward === 'after' ? 'false' : `${key.expression} IS NOT NULL`;
    } else {
      const op = (toward === 'after') === !key.descending ? '>' : '<';
      beyond = toward === 'after' && !key.column ? `(${key.expression} ${op} ${param(i)} OR ${key.expression} IS NULL)` : `${key.expression} ${op} ${param(i)}`;
    }
    return `(${[...equalBefore, beyond].join(' AND ')})`;
  });
  return `(${alternatives.join(' OR ')})`;
}

/**
 * Observation/$lastn: the `max` newest matches per code (the set of codings of the code parameter),
 * ranked by the date key in SQL, so a long record is never cut at a page size first.
 */
export function compileLastN(req: SearchRequest, max: number): { text: string; params: unknown[] } {
  const sql = new Sql();
  const { from, where } = searchFrom(sql, req, 'r');
  const date = sortKey(sql, { param: req.sort[0].param, descending: true }, 'r');
  const codeKey = `(SELECT string_agg(coalesce(c.system, '') || '|' || coalesce(c.value, c.display, ''), ',' ORDER BY c.system, c.value)
    FROM sp_token c WHERE c.resource_type = r.resource_type AND c.id = r.id AND c.code = ${sql.p('code')})`;
  return {
    text: `SELECT ${COLUMNS} FROM (
      SELECT r.*, ${codeKey} AS code_key,
        row_number() OVER (PARTITION BY ${codeKey} ORDER BY ${date.expression} DESC NULLS LAST, r.last_updated DESC, r.id) AS rank
      FROM ${from} WHERE ${where}) r
    WHERE rank <= ${sql.p(max)} ORDER BY code_key, rank`,
    params: sql.params,
  };
}

export function compileCount(req: SearchRequest): { text: string; params: unknown[] } {
  const sql = new Sql();
  const { from, where } = searchFrom(sql, req, 'r');
  return { text: `SELECT count(*) AS count FROM ${from} WHERE ${where}`, params: sql.params };
}

/** Rows of a search whose order leads with the id start at this id (a keyset cursor's). */
interface IdBound {
  op: '>=' | '<=';
  id: string;
}

type ValueFilter = Extract<SearchFilter, { kind: 'value' }>;

/**
 * The filters drive the search from the index: one plain value filter (the driver) selects candidate
 * ids from its index table, and the other index filters are checked against those ids before any
 * resource row is read (measured on Observation?patient&code: 3-4 ms down to under 2 ms, where
 * independent EXISTS clauses let the planner fetch every one of the patient's resources first).
 * Filters on the resource row itself (_id, _lastUpdated, _text, access) apply to the row.
 *
 * A reference to one resource (subject=Patient/1, patient=1) drives when there is one: its matches
 * are bounded by that resource's compartment, where a code or a date may match much of the server.
 * Its index yields the candidates in id order, so without _sort (id order) they join the resource
 * rows as a distinct, ordered set: a page reads its own rows and stops, instead of reading and
 * sorting all of the patient's resources for each page (measured on a patient's 200 Observations,
 * 50 a page: 0.9 ms against 2.3 ms of execution on PGlite). Otherwise the candidates are an IN
 * list, which leaves the planner free to probe the index from the resource rows instead.
 *
 * `type` is the one type to read, for each type's part of a search across types; by default the
 * request's own type, or all of its types at once.
 */
function searchFrom(sql: Sql, req: SearchRequest, alias: string, type?: string, bound?: IdBound): { from: string; where: string } {
  const oneType = type ?? (req.acrossTypes ? undefined : req.resourceType);
  const ofType = (a: string): string =>
    oneType === undefined ? `${a}.resource_type = ANY(${sql.p(req.acrossTypes)}::text[])` : `${a}.resource_type = ${sql.p(oneType)}`;
  const conditions = [ofType(alias), `NOT ${alias}.deleted`];
  const plain = (f: SearchFilter): f is ValueFilter =>
    f.kind === 'value' && f.modifier !== 'missing' && f.modifier !== 'not' && f.modifier !== 'not-in' && TABLE_OF[f.param.type] !== undefined;
  const drivers = req.filters.filter(plain);
  const driver = drivers.find(isOneLocalReference) ?? drivers[0];
  const from = `resource ${alias}`;
  if (!driver) {
    return { from, where: [...conditions, ...req.filters.map((f) => filterCondition(sql, f, alias))].join(' AND ') };
  }
  const d = sql.alias('d');
  const onIndex = (f: SearchFilter): boolean => f.kind === 'value' || f.kind === 'composite' || f.kind === 'chain' || f.kind === 'has';
  const others = req.filters.filter((f) => f !== driver);
  const index = indexFor(driver.param, driver.modifier);
  const inner = [
    ofType(d),
    `${d}.code = ${sql.p(index.code)}`,
    `(${driver.values.map((v) => valueMatch(sql, driver.param, driver.modifier, v, d)).join(' OR ')})`,
    ...others.filter(onIndex).map((f) => filterCondition(sql, f, d)),
  ];
  const rowConditions = others.filter((f) => !onIndex(f)).map((f) => filterCondition(sql, f, alias));
  if (isOneLocalReference(driver) && oneType !== undefined && req.sort.length === 0) {
    if (bound) {
      inner.push(`${d}.id ${bound.op} ${sql.p(bound.id)}`);
    }
    const candidates = `(SELECT DISTINCT ${d}.id FROM ${index.table} ${d} WHERE ${inner.join(' AND ')}) ${d}`;
    return { from: `${from} JOIN ${candidates} ON ${alias}.id = ${d}.id`, where: [...conditions, ...rowConditions].join(' AND ') };
  }
  conditions.push(`${alias}.id IN (SELECT ${d}.id FROM ${index.table} ${d} WHERE ${inner.join(' AND ')})`);
  return { from, where: [...conditions, ...rowConditions].join(' AND ') };
}

/** A reference filter naming one resource by id or Type/id: its index rows come in id order. */
function isOneLocalReference(filter: ValueFilter): boolean {
  return filter.param.type === 'reference' && filter.modifier !== 'identifier' && filter.values.length === 1 && localReference(filter.values[0]) !== undefined;
}

/** The type and id of a relative reference (Type/id) or a bare id; undefined for an absolute URL or a canonical. */
function localReference(value: string): { type?: string; id: string } | undefined {
  const local = /^(?:([A-Z][A-Za-z]+)\/)?([A-Za-z0-9\-.]{1,64})$/.exec(value);
  return local ? { type: local[1], id: local[2] } : undefined;
}

/** SQL condition matching resources (row alias `r`) that satisfy one filter. */
export function filterCondition(sql: Sql, filter: SearchFilter, r: string): string {
  switch (filter.kind) {
    case 'special':
      return specialCondition(sql, filter, r);
    case 'chain': {
      const x = sql.alias('x');
      const c = sql.alias('c');
      return `EXISTS (SELECT 1 FROM sp_reference ${x} JOIN resource ${c} ON ${c}.resource_type = ${x}.target_type AND ${c}.id = ${x}.target_id
        WHERE ${x}.resource_type = ${r}.resource_type AND ${x}.id = ${r}.id AND ${x}.code = ${sql.p(filter.param.code)}
        AND ${x}.target_type = ANY(${sql.p(filter.targetTypes)}::text[]) AND NOT ${c}.deleted AND ${filterCondition(sql, filter.filter, c)})`;
    }
    case 'has': {
      const x = sql.alias('x');
      const s = sql.alias('s');
      return `EXISTS (SELECT 1 FROM sp_reference ${x} JOIN resource ${s} ON ${s}.resource_type = ${x}.resource_type AND ${s}.id = ${x}.id
        WHERE ${x}.resource_type = ${sql.p(filter.sourceType)} AND ${x}.code = ${sql.p(filter.referenceParam.code)}
        AND ${x}.target_type = ${r}.resource_type AND ${x}.target_id = ${r}.id AND NOT ${s}.deleted AND ${filterCondition(sql, filter.filter, s)})`;
    }
    case 'value':
      return valueCondition(sql, filter.param, filter.modifier, filter.values, r);
    case 'composite':
      return `(${filter.values.map((parts) => compositeMatch(sql, filter.param, parts, r)).join(' OR ')})`;
    case 'access': {
      const alternatives = filter.alternatives.map((alt) => {
        const parts = alt.filters.map((f) => filterCondition(sql, f, r));
        if (alt.compartment) {
          parts.push(`${r}.compartments @> ${sql.p([`Patient/${alt.compartment}`])}::text[]`);
        }
        return parts.length ? `(${parts.join(' AND ')})` : 'true';
      });
      const allowed = alternatives.length ? `(${alternatives.join(' OR ')})` : 'false';
      return filter.excludeCompartments.length ? `(${allowed} AND NOT ${r}.compartments && ${sql.p(filter.excludeCompartments)}::text[])` : allowed;
    }
  }
}

/** All components of one composite value matching rows of the same item (one value of the composite's expression). */
function compositeMatch(sql: Sql, param: SearchParamDef, parts: string[], r: string): string {
  const components = param.components!;
  const aliases = components.map(() => sql.alias('k'));
  const from = components
    .map((c, n) => {
      const table = TABLE_OF[c.type];
      const a = aliases[n];
      return n === 0
        ? `${table} ${a}`
        : `JOIN ${table} ${a} ON ${a}.resource_type = ${aliases[0]}.resource_type AND ${a}.id = ${aliases[0]}.id AND ${a}.item = ${aliases[0]}.item`;
    })
    .join(' ');
  const where = components.map((c, n) => `${aliases[n]}.code = ${sql.p(c.code)} AND (${valueMatch(sql, { ...param, code: c.code, type: c.type }, undefined, parts[n], aliases[n])})`);
  return `EXISTS (SELECT 1 FROM ${from} WHERE ${aliases[0]}.resource_type = ${r}.resource_type AND ${aliases[0]}.id = ${r}.id AND ${where.join(' AND ')})`;
}

const TABLE_OF: Record<string, string> = {
  token: 'sp_token',
  string: 'sp_string',
  date: 'sp_date',
  number: 'sp_number',
  quantity: 'sp_quantity',
  reference: 'sp_reference',
  uri: 'sp_uri',
};

/**
 * Where a parameter's values are indexed: a reference's identifier (:identifier) is a token under
 * "<code>:identifier", an identifier's type with its value (:of-type) one under "<code>:of-type".
 */
function indexFor(param: SearchParamDef, modifier: string | undefined): { table: string | undefined; code: string } {
  if (param.type === 'reference' && modifier === 'identifier') return { table: 'sp_token', code: `${param.code}:identifier` };
  if (param.type === 'token' && modifier === 'of-type') return { table: 'sp_token', code: `${param.code}:of-type` };
  return { table: TABLE_OF[param.type], code: param.code };
}

function valueCondition(sql: Sql, param: SearchParamDef, modifier: string | undefined, values: string[], r: string): string {
  const { table, code } = indexFor(param, modifier);
  if (!table) {
    throw badRequest(`Search parameter ${param.code} of type ${param.type} is not supported`);
  }
  const t = sql.alias('t');
  const exists = (match: string): string =>
    `EXISTS (SELECT 1 FROM ${table} ${t} WHERE ${t}.resource_type = ${r}.resource_type AND ${t}.id = ${r}.id AND ${t}.code = ${sql.p(code)} AND (${match}))`;

  if (modifier === 'missing') {
    if (values.length !== 1 || !['true', 'false'].includes(values[0])) {
      throw badRequest(`:missing takes true or false, got "${values.join(',')}"`, param.code);
    }
    return values[0] === 'true' ? `NOT ${exists('true')}` : exists('true');
  }
  const ors = values.map((v) => valueMatch(sql, param, modifier, v, t));
  const match = ors.join(' OR ');
  return modifier === 'not' || modifier === 'not-in' ? `NOT ${exists(match)}` : exists(match);
}

function valueMatch(sql: Sql, param: SearchParamDef, modifier: string | undefined, value: string, t: string): string {
  switch (param.type) {
    case 'token':
      return tokenMatch(sql, param, modifier, value, t);
    case 'string':
      return stringMatch(sql, param, modifier, value, t);
    case 'date': {
      const { prefix, rest } = splitPrefix(value);
      return dateCondition(sql, `${t}.low`, `${t}.high`, prefix, parseDateValue(rest, param.code));
    }
    case 'number': {
      noModifier(param, modifier);
      const { prefix, rest } = splitPrefix(value);
      const n = numberRange(rest);
      if (!n) {
        throw badRequest(`Invalid number "${rest}" for ${param.code}`, param.code);
      }
      return numberCondition(sql, `${t}.value`, prefix, n);
    }
    case 'quantity':
      noModifier(param, modifier);
      return quantityMatch(sql, param, value, t);
    case 'reference':
      return modifier === 'identifier' ? tokenMatch(sql, param, undefined, value, t) : referenceMatch(sql, param, modifier, value, t);
    case 'uri':
      return uriMatch(sql, param, modifier, value, t);
    default:
      throw badRequest(`Search parameter ${param.code} of type ${param.type} is not supported`);
  }
}

function noModifier(param: SearchParamDef, modifier: string | undefined): void {
  if (modifier) {
    throw badRequest(`Modifier :${modifier} is not supported on ${param.type} parameter ${param.code}`, param.code);
  }
}

function tokenMatch(sql: Sql, param: SearchParamDef, modifier: string | undefined, value: string, t: string): string {
  if (modifier === 'text') {
    return `${t}.display ILIKE ${sql.p('%' + escapeLike(value) + '%')}`;
  }
  if (modifier === 'in' || modifier === 'not-in') {
    // Value sets expandable from the R4 definitions (enumerated codes, complete code systems).
    const expansion = expandValueSet(value);
    if (!expansion) {
      throw badRequest(`:${modifier} needs a value set this server can expand locally; ${value} is unknown or not enumerable`, param.code);
    }
    // code elements are indexed without a system: they match on the bare code.
    return `((${t}.system || '|' || ${t}.value) = ANY(${sql.p([...expansion.pairs])}::text[]) OR (${t}.system IS NULL AND ${t}.value = ANY(${sql.p([...expansion.codes])}::text[])))`;
  }
  if (modifier === 'of-type') {
    // [system]|[code]|[value]: all three (search.html, token :of-type), the identifier's value after the second bar.
    const [system, code, identifier] = [...value.split('|').slice(0, 2), value.split('|').slice(2).join('|')];
    if (!system || !code || !identifier) {
      throw badRequest(`:of-type takes [system]|[code]|[value] (the identifier's type coding and its value), got "${value}"`, param.code);
    }
    return `(${t}.system = ${sql.p(system)} AND ${t}.value = ${sql.p(`${code}|${identifier}`)})`;
  }
  if (modifier && modifier !== 'not') {
    throw badRequest(`Modifier :${modifier} is not supported on token parameter ${param.code}`, param.code);
  }
  const bar = value.indexOf('|');
  if (bar < 0) {
    return `${t}.value = ${sql.p(value)}`;
  }
  const system = value.slice(0, bar);
  const code = value.slice(bar + 1);
  if (system === '') {
    return `(${t}.system IS NULL AND ${t}.value = ${sql.p(code)})`;
  }
  if (code === '') {
    return `${t}.system = ${sql.p(system)}`;
  }
  return `(${t}.system = ${sql.p(system)} AND ${t}.value = ${sql.p(code)})`;
}

function stringMatch(sql: Sql, param: SearchParamDef, modifier: string | undefined, value: string, t: string): string {
  switch (modifier) {
    case undefined:
      return `${t}.norm LIKE ${sql.p(escapeLike(normalizeString(value)) + '%')}`;
    case 'exact':
      return `${t}.value = ${sql.p(value)}`;
    case 'contains':
      return `${t}.norm LIKE ${sql.p('%' + escapeLike(normalizeString(value)) + '%')}`;
    default:
      throw badRequest(`Modifier :${modifier} is not supported on string parameter ${param.code}`, param.code);
  }
}

function referenceMatch(sql: Sql, param: SearchParamDef, modifier: string | undefined, value: string, t: string): string {
  let type: string | undefined;
  if (modifier) {
    if (!/^[A-Z][A-Za-z]+$/.test(modifier)) {
      throw badRequest(`Modifier :${modifier} is not supported on reference parameter ${param.code}`, param.code);
    }
    type = modifier;
  }
  const local = localReference(value);
  if (local) {
    const refType = local.type ?? type;
    if (local.type && type && local.type !== type) {
      throw badRequest(`Reference ${value} does not match the :${type} modifier`, param.code);
    }
    return refType
      ? `(${t}.target_type = ${sql.p(refType)} AND ${t}.target_id = ${sql.p(local.id)})`
      : `${t}.target_id = ${sql.p(local.id)}`;
  }
  if (!/^[a-z][a-z0-9+.-]*:\S+$/i.test(value)) {
    throw badRequest(`Invalid reference "${value}" for ${param.code}: expected an id, Type/id or an absolute URL`, param.code);
  }
  // An absolute URL to a resource on another server matches that exact reference.
  if (/\/[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(value)) {
    return `${t}.target = ${sql.p(value)}`;
  }
  // A canonical: a versioned reference (url|1.0) also matches the unversioned search value.
  return `(${t}.target = ${sql.p(value)} OR ${t}.target LIKE ${sql.p(escapeLike(value) + '|%')})`;
}

function uriMatch(sql: Sql, param: SearchParamDef, modifier: string | undefined, value: string, t: string): string {
  switch (modifier) {
    case undefined:
      return `${t}.value = ${sql.p(value)}`;
    case 'below':
      return `${t}.value LIKE ${sql.p(escapeLike(value) + '%')}`;
    case 'above':
      return `${sql.p(value)} LIKE replace(replace(replace(${t}.value, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'`;
    default:
      throw badRequest(`Modifier :${modifier} is not supported on uri parameter ${param.code}`, param.code);
  }
}

function quantityMatch(sql: Sql, param: SearchParamDef, value: string, t: string): string {
  const parts = value.split('|');
  if (parts.length !== 1 && parts.length !== 3) {
    throw badRequest(`Quantity search value must be [prefix]number or [prefix]number|system|code, got "${value}"`, param.code);
  }
  const { prefix, rest } = splitPrefix(parts[0]);
  const system = parts[1] || undefined;
  const code = parts[2] || undefined;
  const n = numberRange(rest);
  if (!n) {
    throw badRequest(`Invalid number "${rest}" in quantity search`, param.code);
  }
  if (system === 'http://unitsofmeasure.org' && code) {
    const convert = (v: number): number | undefined => canonicalQuantity(v, code)?.value;
    const unit = canonicalQuantity(n.value, code)?.unit;
    const [value, low, high] = [convert(n.value), convert(n.low), convert(n.high)];
    if (unit && value !== undefined && low !== undefined && high !== undefined) {
      // UCUM: compare in base units, so 0.1 g/L finds 10 mg/dL; the precision range converts too.
      return `(${t}.canonical_unit = ${sql.p(unit)} AND ${numberCondition(sql, `${t}.canonical_value`, prefix, { value, low, high })})`;
    }
  }
  const conditions = [numberCondition(sql, `${t}.value`, prefix, n)];
  if (system) {
    conditions.push(`${t}.system = ${sql.p(system)}`);
  }
  if (code) {
    conditions.push(`${t}.unit = ${sql.p(code)}`);
  }
  return `(${conditions.join(' AND ')})`;
}

const PREFIXES = new Set<Prefix>(['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap']);

function splitPrefix(value: string): { prefix: Prefix; rest: string } {
  const p = value.slice(0, 2) as Prefix;
  if (PREFIXES.has(p) && value.length > 2 && !/^[a-z]/.test(value.slice(2, 3))) {
    return { prefix: p, rest: value.slice(2) };
  }
  return { prefix: 'eq', rest: value };
}

function parseDateValue(value: string, code: string): DateRange {
  const range = dateRange(value);
  if (!range) {
    throw badRequest(`Invalid date "${value}" for ${code}: expected YYYY, YYYY-MM, YYYY-MM-DD or a dateTime with time zone`, code);
  }
  return range;
}

/** Date comparison of a resource range [low, high) against the parameter range P (FHIR R4 §3.1.1.4.2). */
export function dateCondition(sql: Sql, low: string, high: string, prefix: Prefix, range: DateRange): string {
  // Parameters are bound lazily: an unused placeholder has no inferable type and PostgreSQL rejects the statement.
  let lowParam: string | undefined;
  let highParam: string | undefined;
  const P = {
    get low(): string {
      return (lowParam ??= `${sql.p(range.low)}::timestamptz`);
    },
    get high(): string {
      return (highParam ??= `${sql.p(range.high)}::timestamptz`);
    },
  };
  switch (prefix) {
    case 'eq':
      return `(${low} >= ${P.low} AND ${high} <= ${P.high})`;
    case 'ne':
      return `NOT (${low} >= ${P.low} AND ${high} <= ${P.high})`;
    case 'gt':
      return `${high} > ${P.high}`;
    case 'lt':
      return `${low} < ${P.low}`;
    case 'ge':
      return `(${low} >= ${P.low} OR ${high} > ${P.high})`;
    case 'le':
      return `(${high} <= ${P.high} OR ${low} < ${P.low})`;
    case 'sa':
      return `${low} >= ${P.high}`;
    case 'eb':
      return `${high} <= ${P.low}`;
    case 'ap': {
      // "Approximately": the parameter range widened by 10% of its distance from now.
      const now = Date.now();
      const lowMs = Date.parse(range.low);
      const highMs = Date.parse(range.high);
      const widen = (ms: number): number => Math.abs(now - ms) * 0.1;
      const wl = `${sql.p(new Date(lowMs - widen(lowMs)).toISOString())}::timestamptz`;
      const wh = `${sql.p(new Date(highMs + widen(highMs)).toISOString())}::timestamptz`;
      return `(${low} < ${wh} AND ${high} > ${wl})`;
    }
  }
}

function numberCondition(sql: Sql, column: string, prefix: Prefix, n: NumberRange): string {
  const value = (): string => sql.p(n.value);
  switch (prefix) {
    case 'eq':
    case 'ne': {
      // Implicit precision: "100" matches [99.5, 100.5).
      const cond = `(${column} >= ${sql.p(n.low)} AND ${column} < ${sql.p(n.high)})`;
      return prefix === 'eq' ? cond : `NOT ${cond}`;
    }
    case 'gt':
    case 'sa':
      return `${column} > ${value()}`;
    case 'lt':
    case 'eb':
      return `${column} < ${value()}`;
    case 'ge':
      return `${column} >= ${value()}`;
    case 'le':
      return `${column} <= ${value()}`;
    case 'ap':
      return `(${column} >= ${sql.p(n.value - Math.abs(n.value) * 0.1)} AND ${column} <= ${sql.p(n.value + Math.abs(n.value) * 0.1)})`;
  }
}

function specialCondition(sql: Sql, filter: Extract<SearchFilter, { kind: 'special' }>, r: string): string {
  switch (filter.code) {
    case '_id':
      if (filter.modifier === 'missing') {
        // every resource has an id
        return filter.values[0] === 'false' ? 'true' : 'false';
      }
      if (filter.modifier === 'not') {
        return `NOT (${r}.id = ANY(${sql.p(filter.values)}::text[]))`;
      }
      return `${r}.id = ANY(${sql.p(filter.values)}::text[])`;
    case '_lastUpdated':
      return `(${filter.values
        .map((v) => {
          const { prefix, rest } = splitPrefix(v);
          return dateCondition(sql, `${r}.last_updated`, `(${r}.last_updated + interval '1 millisecond')`, prefix, parseDateValue(rest, '_lastUpdated'));
        })
        .join(' OR ')})`;
    case '_content': {
      // Text content only: string values anywhere in the resource, not JSON keys or punctuation,
      // and for a DocumentReference the text extracted from its document.
      const patterns = filter.values.map((v) => sql.p('%' + escapeLike(v) + '%'));
      return `(EXISTS (SELECT 1 FROM jsonb_path_query(${r}.content::jsonb, 'strict $.**') AS v(j) WHERE jsonb_typeof(v.j) = 'string' AND (${patterns
        .map((p) => `(v.j #>> '{}') ILIKE ${p}`)
        .join(' OR ')}))
        OR (${r}.resource_type = 'DocumentReference' AND EXISTS (SELECT 1 FROM document_text t WHERE t.document_id = ${r}.id AND (${patterns
          .map((p) => `t.plain ILIKE ${p}`)
          .join(' OR ')}))))`;
    }
    case '_text':
      return `(${filter.values.map((v) => `(${r}.content->'text'->>'div') ILIKE ${sql.p('%' + escapeLike(v) + '%')}`).join(' OR ')})`;
  }
}

function sortKeys(sql: Sql, req: SearchRequest, r: string): SortKey[] {
  const keys = req.sort.map((rule) => sortKey(sql, rule, r));
  // The id, not the time of the last update, ends the order: a resource updated while a client
  // pages keeps its place. Server-assigned ids lead with their creation time (resource-id.ts), so
  // without _sort a search lists resources in the order they were created.
  keys.push({ expression: `${r}.id`, descending: false, type: 'text', column: true });
  if (req.acrossTypes && req.acrossTypes.length > 1) {
    keys.push({ expression: `${r}.resource_type`, descending: false, type: 'text', column: true }); // ids are unique within a type only
  }
  return keys;
}

function sortKey(sql: Sql, rule: SortRule, r: string): SortKey {
  const descending = rule.descending;
  if (rule.param === '_id') {
    return { expression: `${r}.id`, descending, type: 'text', column: true };
  }
  if (rule.param === '_lastUpdated') {
    return { expression: `${r}.last_updated`, descending, type: 'timestamptz', column: true };
  }
  const param = rule.param;
  const column: Record<string, [string, SortKey['type']]> = {
    string: ['norm', 'text'],
    token: ['value', 'text'],
    date: [descending ? 'high' : 'low', 'timestamptz'],
    number: ['value', 'numeric'],
    quantity: ['value', 'numeric'],
    reference: ['target', 'text'],
    uri: ['value', 'text'],
  };
  const table = TABLE_OF[param.type];
  const [col, type] = column[param.type] ?? [];
  if (!table || !col || !type) {
    throw badRequest(`Cannot sort by ${param.code} (type ${param.type})`, '_sort');
  }
  const s = sql.alias('o');
  const agg = descending ? 'max' : 'min';
  return {
    expression: `(SELECT ${agg}(${s}.${col}) FROM ${table} ${s} WHERE ${s}.resource_type = ${r}.resource_type AND ${s}.id = ${r}.id AND ${s}.code = ${sql.p(param.code)})`,
    descending,
    type,
  };
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => '\\' + c);
}
