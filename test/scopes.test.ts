import {
  formatScopes,
  grantsFor,
  isSmartScope,
  narrowScopes,
  parseScopes,
  type ResourceScope,
} from '../src/auth/scopes.js';

/**
 * SMART App Launch 2.0 scope grammar and evaluation. Every expectation below was worked out by hand
 * from the spec page "Scopes and Launch Context".
 */

const perms = (scope: ResourceScope): string => [...scope.permissions].sort().join('');
const only = (scope: string): ResourceScope => {
  const parsed = parseScopes(scope);
  expect(parsed.unrecognised).toEqual([]);
  expect(parsed.resourceScopes).toHaveLength(1);
  return parsed.resourceScopes[0];
};

describe('parseScopes', () => {
  it('maps v1 permissions onto their v2 equivalents', () => {
    expect(perms(only('patient/Observation.read'))).toBe('rs');
    expect(perms(only('patient/Observation.write'))).toBe('cdu');
    expect(perms(only('patient/Observation.*'))).toBe('cdrsu');
    expect(only('patient/Observation.read').version).toBe(1);
    expect(only('patient/Observation.rs').version).toBe(2);
  });

  it('treats v1 read and v2 rs as the same grant', () => {
    const v1 = only('user/Patient.read');
    const v2 = only('user/Patient.rs');
    expect(perms(v1)).toBe(perms(v2));
    expect([v1.context, v1.resourceType]).toEqual([v2.context, v2.resourceType]);
  });

  it('reads every field of a v2 scope', () => {
    expect(only('system/Encounter.cud')).toEqual({
      raw: 'system/Encounter.cud',
      context: 'system',
      resourceType: 'Encounter',
      permissions: new Set(['c', 'u', 'd']),
      query: [],
      version: 2,
    });
  });

  it('accepts single permissions and the full cruds set', () => {
    for (const p of ['c', 'r', 'u', 'd', 's']) expect(perms(only(`patient/Condition.${p}`))).toBe(p);
    expect(perms(only('user/Condition.cruds'))).toBe('cdrsu');
    expect(perms(only('user/Condition.rd'))).toBe('dr');
  });

  it('accepts wildcard resource types', () => {
    expect(only('patient/*.rs').resourceType).toBe('*');
    expect(only('user/*.read').resourceType).toBe('*');
    expect(perms(only('system/*.*'))).toBe('cdrsu');
  });

  it.each([
    ['permissions out of order', 'patient/Observation.sr'],
    ['permissions out of order (cruds)', 'user/Observation.rcuds'],
    ['repeated permission', 'patient/Observation.rrs'],
    ['unknown permission letter', 'patient/Observation.x'],
    ['mixed v1 and v2', 'patient/Observation.reads'],
    ['empty permission', 'patient/Observation.'],
    ['missing permission', 'patient/Observation'],
    ['lower-case resource type', 'patient/observation.read'],
    ['resource type with a digit', 'patient/Observation2.rs'],
    ['one-letter resource type', 'patient/O.rs'],
    ['upper-case v1 permission', 'patient/Observation.READ'],
    ['unknown context', 'practitioner/Observation.rs'],
    ['upper-case context', 'Patient/Observation.rs'],
    ['query on a v1 scope', 'patient/Observation.read?category=laboratory'],
    ['query on a v1 wildcard permission', 'patient/Observation.*?category=laboratory'],
    ['empty query', 'patient/Observation.rs?'],
    ['query with no parameters', 'patient/Observation.rs?&'],
    ['query parameter with no name', 'patient/Observation.rs?=laboratory'],
    ['v2 wildcard permission mixed with letters', 'patient/Observation.*s'],
    ['unknown word', 'launch/location'],
    ['case-mangled word', 'fhiruser'],
  ])('rejects %s: %s', (_why, scope) => {
    expect(parseScopes(scope)).toEqual({ resourceScopes: [], other: new Set(), unrecognised: [scope] });
    expect(isSmartScope(scope)).toBe(false);
  });

  it('decodes query restrictions, keeping the spec example intact', () => {
    const raw = 'patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory';
    expect(only(raw).query).toEqual([['category', 'http://terminology.hl7.org/CodeSystem/observation-category|laboratory']]);
    expect(only(raw).raw).toBe(raw);
  });

  it('URL-decodes percent-encoded restrictions and keeps every pair', () => {
    const scope = only('user/Observation.s?category=http%3A%2F%2Fexample.org%7Cvital-signs&status=final&code=a.b');
    expect(scope.query).toEqual([
      ['category', 'http://example.org|vital-signs'],
      ['status', 'final'],
      ['code', 'a.b'],
    ]);
    expect(perms(scope)).toBe('s');
  });

  it('sorts tokens into resource scopes, other words and unrecognised, splitting on any whitespace', () => {
    const parsed = parseScopes('  openid fhirUser\tprofile\nlaunch launch/patient launch/encounter  offline_access online_access patient/*.rs bogus patient/Observation.sr openid ');
    expect(parsed.resourceScopes.map((s) => s.raw)).toEqual(['patient/*.rs']);
    expect([...parsed.other]).toEqual([
      'openid',
      'fhirUser',
      'profile',
      'launch',
      'launch/patient',
      'launch/encounter',
      'offline_access',
      'online_access',
    ]);
    expect(parsed.unrecognised).toEqual(['bogus', 'patient/Observation.sr']);
  });

  it('returns an empty result for missing or blank scope strings', () => {
    const empty = { resourceScopes: [], other: new Set(), unrecognised: [] };
    expect(parseScopes(undefined)).toEqual(empty);
    expect(parseScopes('')).toEqual(empty);
    expect(parseScopes(' \t ')).toEqual(empty);
  });
});

describe('isSmartScope', () => {
  it('accepts resource scopes of both versions and the other words', () => {
    for (const s of ['patient/Observation.read', 'user/*.cruds', 'system/Patient.rs?_id=1', 'openid', 'launch/encounter']) {
      expect(isSmartScope(s)).toBe(true);
    }
  });

  it('rejects strings holding more than one scope', () => {
    expect(isSmartScope('openid profile')).toBe(false);
    expect(isSmartScope('patient/Observation.rs?category=a b')).toBe(false);
    expect(isSmartScope('')).toBe(false);
  });
});

describe('grantsFor', () => {
  const parsed = parseScopes(
    [
      'patient/Observation.rs?category=laboratory',
      'patient/Observation.r?category=vital-signs',
      'patient/*.read',
      'user/Observation.cruds',
      'patient/Condition.c',
      'launch',
    ].join(' '),
  );
  const raws = (scopes: ResourceScope[]): string[] => scopes.map((s) => s.raw);

  it('returns every matching scope, exact and wildcard, each with its own restriction', () => {
    const grants = grantsFor(parsed, ['patient'], 'Observation', 'r');
    expect(raws(grants)).toEqual(['patient/Observation.rs?category=laboratory', 'patient/Observation.r?category=vital-signs', 'patient/*.read']);
    expect(grants.map((g) => g.query)).toEqual([[['category', 'laboratory']], [['category', 'vital-signs']], []]);
  });

  it('checks the permission letter', () => {
    expect(raws(grantsFor(parsed, ['patient'], 'Observation', 's'))).toEqual(['patient/Observation.rs?category=laboratory', 'patient/*.read']);
    expect(grantsFor(parsed, ['patient'], 'Observation', 'u')).toEqual([]);
    expect(raws(grantsFor(parsed, ['patient'], 'Condition', 'c'))).toEqual(['patient/Condition.c']);
    expect(raws(grantsFor(parsed, ['patient'], 'Condition', 'd'))).toEqual([]);
  });

  it('lets a wildcard type cover any resource type', () => {
    expect(raws(grantsFor(parsed, ['patient'], 'MedicationRequest', 'r'))).toEqual(['patient/*.read']);
  });

  it('only matches the requested contexts', () => {
    expect(raws(grantsFor(parsed, ['user'], 'Observation', 'u'))).toEqual(['user/Observation.cruds']);
    expect(grantsFor(parsed, ['system'], 'Observation', 'r')).toEqual([]);
    expect(grantsFor(parsed, [], 'Observation', 'r')).toEqual([]);
    expect(raws(grantsFor(parsed, ['user', 'patient'], 'Observation', 'd'))).toEqual(['user/Observation.cruds']);
  });

  it('skips a same-type scope lacking the permission while a wildcard still grants it', () => {
    expect(raws(grantsFor(parsed, ['patient'], 'Condition', 's'))).toEqual(['patient/*.read']);
  });
});

describe('formatScopes', () => {
  it('joins with single spaces, keeps first-seen order and removes duplicates', () => {
    expect(formatScopes(['openid', 'patient/*.rs', 'openid', 'launch', 'patient/*.rs'])).toBe('openid patient/*.rs launch');
  });

  it('normalises entries that carry their own whitespace', () => {
    expect(formatScopes([' openid  profile ', 'profile', ''])).toBe('openid profile');
    expect(formatScopes([])).toBe('');
  });
});

describe('narrowScopes', () => {
  it('keeps requested scopes that are a subset of an allowed one', () => {
    expect(narrowScopes('patient/Observation.rs patient/Observation.r', 'patient/Observation.cruds')).toEqual([
      'patient/Observation.rs',
      'patient/Observation.r',
    ]);
  });

  it('drops requested scopes that ask for more than allowed', () => {
    expect(narrowScopes('patient/Observation.cruds patient/Patient.rs', 'patient/Observation.rs patient/Patient.rs')).toEqual(['patient/Patient.rs']);
    expect(narrowScopes('patient/Observation.*', 'patient/Observation.read')).toEqual([]);
  });

  it('compares v1 and v2 scopes by their permissions', () => {
    expect(narrowScopes('patient/Observation.read', 'patient/Observation.rs')).toEqual(['patient/Observation.read']);
    expect(narrowScopes('patient/Observation.cud', 'patient/Observation.write')).toEqual(['patient/Observation.cud']);
    expect(narrowScopes('patient/Observation.write', 'patient/Observation.cu')).toEqual([]);
  });

  it('lets an allowed wildcard type cover specific types but not the other way round', () => {
    expect(narrowScopes('patient/Observation.rs patient/*.rs', 'patient/*.read')).toEqual(['patient/Observation.rs', 'patient/*.rs']);
    expect(narrowScopes('patient/*.rs', 'patient/Observation.rs')).toEqual([]);
  });

  it('never crosses contexts', () => {
    expect(narrowScopes('user/Observation.rs system/Observation.rs', 'patient/Observation.rs')).toEqual([]);
    expect(narrowScopes('patient/Observation.rs', 'user/*.cruds')).toEqual([]);
  });

  it('combines permissions only within a single allowed scope', () => {
    expect(narrowScopes('patient/Observation.rs', 'patient/Observation.r patient/Observation.s')).toEqual([]);
  });

  it('keeps the requested query restriction under an unrestricted allowed scope', () => {
    const requested = 'patient/Observation.rs?category=laboratory';
    expect(narrowScopes(requested, 'patient/Observation.rs')).toEqual([requested]);
  });

  it('requires the same restriction when the allowed scope is restricted', () => {
    const allowed = 'patient/Observation.rs?category=laboratory&status=final';
    expect(narrowScopes('patient/Observation.rs?category=laboratory&status=final', allowed)).toEqual(['patient/Observation.rs?category=laboratory&status=final']);
    expect(narrowScopes('patient/Observation.r?status=final&category=laboratory', allowed)).toEqual(['patient/Observation.r?status=final&category=laboratory']);
    expect(narrowScopes('patient/Observation.r?category=lab%6fratory&status=final', allowed)).toEqual(['patient/Observation.r?category=lab%6fratory&status=final']);
    expect(narrowScopes('patient/Observation.rs', allowed)).toEqual([]);
    expect(narrowScopes('patient/Observation.rs?category=laboratory', allowed)).toEqual([]);
    expect(narrowScopes('patient/Observation.rs?category=vital-signs&status=final', allowed)).toEqual([]);
  });

  it('passes a restricted request through any allowed scope that covers it', () => {
    const allowed = 'patient/Observation.rs?category=vital-signs patient/*.rs';
    expect(narrowScopes('patient/Observation.rs?category=laboratory', allowed)).toEqual(['patient/Observation.rs?category=laboratory']);
  });

  it('keeps other words only when allowed, drops unrecognised ones, and preserves requested order', () => {
    expect(
      narrowScopes('offline_access bogus patient/Observation.rs openid launch/patient patient/Observation.sr', 'openid launch/patient patient/*.cruds'),
    ).toEqual(['patient/Observation.rs', 'openid', 'launch/patient']);
  });

  it('returns nothing for an empty request or an empty allowance', () => {
    expect(narrowScopes('', 'patient/*.cruds openid')).toEqual([]);
    expect(narrowScopes('patient/*.rs openid', '')).toEqual([]);
  });
});
