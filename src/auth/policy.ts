import { canBelongToPatient } from '../storage/search-index.js';
import { grantsFor, type ParsedScopes, type Permission, type ScopeContext } from './scopes.js';
import type { Role } from './users.js';

/** Who is calling, as established from the access token. */
export interface AccessContext {
  clientId: string;
  /** client_credentials tokens act for a system; the rest for a signed-in user. */
  kind: 'user' | 'system';
  scopes: ParsedScopes;
  /** SMART launch context: the id of the patient in context. */
  patient?: string;
  encounter?: string;
  userId?: string;
  role?: Role;
  /** e.g. "Practitioner/123" */
  fhirUser?: string;
  /** Patients (ids) whose active Consent denies this caller: their records are out of reach. */
  consentDenied?: string[];
}

/**
 * One way a caller may reach resources of a type: limited to one patient's compartment and/or
 * to resources matching a search query (SMART v2 `?category=laboratory`). Several rules OR.
 */
export interface AccessRule {
  patient?: string;
  query: [string, string][];
}

/** Resources about the organisation rather than a patient: readable by every signed-in role. */
const DIRECTORY_TYPES = new Set([
  'Practitioner', 'PractitionerRole', 'Organization', 'Location', 'HealthcareService', 'Endpoint', 'Device',
  'Medication', 'Substance', 'Questionnaire', 'ValueSet', 'CodeSystem', 'ConceptMap', 'StructureDefinition',
  'SearchParameter', 'OperationDefinition', 'CapabilityStatement', 'PlanDefinition', 'ActivityDefinition', 'Library',
]);

/**
 * Default access per role (documented in the README). Scopes say what the app may do; the role
 * says what the person may do; a request needs both.
 * - patient: reads their own record and the directory; writes questionnaire answers, documents and
 *   self-reported observations into their own record.
 * - nurse: reads all clinical data; creates and updates patients, encounters, observations
 *   (nursing assessments), questionnaire answers, documents and tasks.
 * - physician: reads and writes all clinical data, including conditions (diagnoses), and completes assessments.
 * - admin: manages the directory (practitioners, organisations, …), reads the audit trail; no clinical data.
 */
const NURSE_WRITES = new Set(['Patient', 'Encounter', 'Observation', 'QuestionnaireResponse', 'DocumentReference', 'Binary', 'Task', 'Flag', 'RiskAssessment', 'Communication', 'Provenance']);
const PATIENT_WRITES = new Set(['QuestionnaireResponse', 'DocumentReference', 'Binary', 'Observation', 'Communication']);

function roleAllows(role: Role, type: string, permission: Permission): boolean {
  const read = permission === 'r' || permission === 's';
  if (type === 'AuditEvent') {
    return role === 'admin' && read;
  }
  if (DIRECTORY_TYPES.has(type)) {
    return read || role === 'admin';
  }
  switch (role) {
    case 'admin':
      return false;
    case 'physician':
      return true;
    case 'nurse':
      return read || ((permission === 'c' || permission === 'u') && NURSE_WRITES.has(type));
    case 'patient':
      return read || ((permission === 'c' || permission === 'u') && PATIENT_WRITES.has(type));
  }
}

export class AccessPolicy {
  constructor(readonly context: AccessContext) {}

  /** The rules under which `permission` on `type` is granted; empty means forbidden. */
  rules(type: string, permission: Permission): AccessRule[] {
    const { context } = this;
    // The audit trail is append-only for everyone, whatever the scopes say.
    if (type === 'AuditEvent' && (permission === 'u' || permission === 'd')) {
      return [];
    }
    if (context.role && !roleAllows(context.role, type, permission)) {
      return [];
    }
    const contexts: ScopeContext[] = context.kind === 'system' ? ['system'] : ['user', 'patient'];
    const inCompartment = canBelongToPatient(type);
    const ownPatient = context.role === 'patient' ? context.fhirUser?.replace(/^Patient\//, '') : undefined;
    const rules: AccessRule[] = [];
    for (const scope of grantsFor(context.scopes, contexts, type, permission)) {
      let patient = scope.context === 'patient' ? context.patient : undefined;
      if (scope.context === 'patient' && !patient) {
        continue; // a patient scope without a patient in context grants nothing
      }
      if (ownPatient) {
        patient = ownPatient;
      }
      if (!inCompartment) {
        // Directory resources belong to no patient: patient-limited callers may read them, not change them.
        if (patient && permission !== 'r' && permission !== 's') {
          continue;
        }
        patient = undefined;
      }
      rules.push({ ...(patient ? { patient } : {}), query: scope.query });
    }
    return rules;
  }

  /** True when some rule grants `permission` on every resource of `type`. */
  unrestricted(type: string, permission: Permission): boolean {
    return this.rules(type, permission).some((r) => !r.patient && r.query.length === 0);
  }
}
