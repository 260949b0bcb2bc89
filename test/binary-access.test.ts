import { AccessPolicy } from '../src/auth/policy.js';
import { parseScopes } from '../src/auth/scopes.js';

/**
 * A patient's uploaded documents are theirs alone: Binary is limited to the patient's compartment
 * like the rest of their record (its securityContext places it there), not readable as a directory type.
 */
describe('Binary access for patient-limited callers', () => {
  const patientUser = new AccessPolicy({
    clientId: 'app',
    kind: 'user',
    role: 'patient',
    fhirUser: 'Patient/p1',
    patient: 'p1',
    scopes: parseScopes('patient/*.cruds'),
  });

  test('a patient reads, searches and creates Binaries only within their own compartment', () => {
    for (const permission of ['r', 's', 'c'] as const) {
      expect(patientUser.rules('Binary', permission)).toEqual([{ patient: 'p1', query: [] }]);
    }
    expect(patientUser.unrestricted('Binary', 'r')).toBe(false);
  });

  test('a directory type stays readable without a patient limit (the contrast Binary used to fall into)', () => {
    expect(patientUser.rules('Organization', 'r')).toEqual([{ query: [] }]);
  });
});
