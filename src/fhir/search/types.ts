import type { SearchParamDef } from '../definitions.js';
import type { Summary } from '../summary.js';

/** Search prefixes of FHIR R4 §3.1.1.4.2 (eq when none is given). */
export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';

/** One parsed search criterion: values are ORed, criteria in a SearchRequest are ANDed. */
export type SearchFilter =
  | {
      kind: 'value';
      param: SearchParamDef;
      modifier?: string;
      /** Raw values (commas already split, escapes resolved). */
      values: string[];
    }
  | {
      /** subject:Patient.name=peter — reference parameter, target type, then a filter on the target. */
      kind: 'chain';
      param: SearchParamDef;
      targetTypes: string[];
      filter: SearchFilter;
    }
  | {
      /** _has:Observation:patient:code=1234 — resources referenced by matching resources of another type. */
      kind: 'has';
      sourceType: string;
      referenceParam: SearchParamDef;
      filter: SearchFilter;
    }
  | {
      /** code-value-quantity=http://loinc.org|8480-6$gt140 — every component matches within one value of the composite. */
      kind: 'composite';
      param: SearchParamDef;
      /** ORed values, each split into one string per component. */
      values: string[][];
    }
  | {
      /**
       * Not from the query string: the caller's access rules (SMART scopes, role, patient context),
       * added by the server. Matches resources that satisfy any one alternative.
       */
      kind: 'access';
      alternatives: { compartment?: string; filters: SearchFilter[] }[];
      /** Compartments ("Patient/<id>") whose patients' Consent denies the caller. */
      excludeCompartments: string[];
    }
  | {
      /** _id and _lastUpdated and _text/_content, stored on the resource row itself. */
      kind: 'special';
      code: '_id' | '_lastUpdated' | '_text' | '_content';
      modifier?: string;
      values: string[];
    };

export interface SortRule {
  /** A search parameter, or the row columns _id / _lastUpdated. */
  param: SearchParamDef | '_id' | '_lastUpdated';
  descending: boolean;
}

export interface IncludeRule {
  sourceType: string;
  param: SearchParamDef;
  targetType?: string;
  iterate: boolean;
}

export interface SearchCursor {
  direction: 'next' | 'previous';
  /** One value per sort key (the _sort keys, then lastUpdated and id), as SQL text or null. */
  values: (string | null)[];
}

export interface SearchRequest {
  resourceType: string;
  /**
   * A search across types (search-system, `GET [base]?_type=…`): the types searched, whose
   * parameters all apply to each; resourceType is then the first of them.
   */
  acrossTypes?: readonly string[];
  filters: SearchFilter[];
  sort: SortRule[];
  count: number;
  offset: number;
  /**
   * Keyset paging: the sort key of the row the page starts after (next) or ends before (previous).
   * Pages addressed this way do not shift when resources are created or deleted meanwhile.
   */
  cursor?: SearchCursor;
  /**
   * _total. Absent: the total is given when it costs nothing (every match is on this page, or this is
   * the last page); counting a multi-page result takes _total=accurate (or estimate, answered accurately).
   */
  total?: 'none' | 'estimate' | 'accurate';
  summary?: Summary;
  elements?: string[];
  include: IncludeRule[];
  revinclude: IncludeRule[];
  /** Parameters ignored under Prefer: handling=lenient, reported back as warnings. */
  warnings: string[];
  /** The canonical query string for self/next links (paging parameters excluded). */
  canonicalQuery: string;
}
