import type { Context } from 'koa';
import type { AccessContext, AccessPolicy } from '../auth/policy.js';
import { FhirError } from '../fhir/outcome.js';
import type { FhirRequest, FhirResponse } from '../fhir/types.js';
import type { AuditLog, AuditRecord } from './audit-log.js';

/**
 * Runs one authenticated FHIR request and records its AuditEvent, whatever the outcome; the
 * response waits for the record. A request that can return AuditEvents first sees every event
 * committed before it.
 */
export async function auditedRequest(
  audit: AuditLog,
  ctx: Context,
  request: FhirRequest & { access: AccessPolicy },
  handle: () => Promise<FhirResponse>,
): Promise<FhirResponse> {
  const described = { method: ctx.method, path: request.path, query: ctx.querystring, caller: request.access.context };
  let response: FhirResponse;
  try {
    if (readsAuditTrail(request)) {
      await audit.materialize();
    }
    response = await handle();
  } catch (err) {
    await audit.record(restAuditRecord(ctx, described, err instanceof FhirError ? err.status : 500));
    throw err;
  }
  await audit.record(restAuditRecord(ctx, { ...described, response }, response.status));
  return response;
}

/**
 * Requests that can return AuditEvents: those naming the type anywhere (a read or search of it, a
 * compartment search, _include / _revinclude, `$everything?_type=AuditEvent`, a search form), and
 * those reaching across types (system-level interactions, batches). A plain $everything leaves the
 * audit trail out.
 */
function readsAuditTrail(request: FhirRequest): boolean {
  const path = request.path.replace(/^\/+/, '');
  return (
    path === '' ||
    /^[_$]/.test(path) ||
    path.includes('AuditEvent') ||
    request.query.some(([, value]) => value.includes('AuditEvent')) ||
    (typeof request.body === 'string' && request.body.includes('AuditEvent'))
  );
}

interface AuditedRequest {
  method: string;
  /** Path below the FHIR base. */
  path: string;
  query: string;
  caller?: AccessContext;
  response?: FhirResponse;
}

/** Describes one FHIR REST request for the audit trail: which interaction, on what, by whom, with what outcome. */
export function restAuditRecord(ctx: Context, req: AuditedRequest, status: number): AuditRecord {
  const [type, id, sub, vid] = req.path.split('/').filter(Boolean);
  const { interaction, action } = classify(req.method, type, id, sub, vid);
  const created = req.response?.status === 201 ? req.response.resource : undefined;
  const target = created?.id ? `${created.resourceType}/${created.id}` : type && id && !id.startsWith('$') && !id.startsWith('_') ? `${type}/${id}` : undefined;
  const caller = req.caller;
  return {
    kind: 'rest',
    interaction,
    action,
    status,
    requestId: ctx.state.requestId as string | undefined,
    ip: ctx.ip,
    ...(caller ? { clientId: caller.clientId } : {}),
    ...(caller?.userId ? { userId: caller.userId } : {}),
    ...(caller?.fhirUser ? { fhirUser: caller.fhirUser } : {}),
    ...(target ? { what: [target] } : {}),
    ...(caller?.patient ? { patient: caller.patient } : type === 'Patient' && target ? { patient: target.slice('Patient/'.length) } : {}),
    ...(req.query ? { query: req.query } : {}),
  };
}

function classify(method: string, type?: string, id?: string, sub?: string, vid?: string): Pick<AuditRecord, 'interaction' | 'action'> {
  const operation = [type, id, sub].some((s) => s?.startsWith('$'));
  if (operation) {
    return { interaction: 'operation', action: 'E' };
  }
  if (!type && method === 'POST') {
    return { interaction: 'transaction', action: 'E' };
  }
  if (!type || type === '_search') {
    return { interaction: 'search-system', action: 'R' };
  }
  if (type === 'metadata') {
    return { interaction: 'capabilities', action: 'E' };
  }
  if (type === '_history' || id === '_history' || sub === '_history') {
    return { interaction: vid ? 'vread' : type === '_history' ? 'history-system' : id === '_history' ? 'history-type' : 'history-instance', action: 'R' };
  }
  switch (method) {
    case 'POST':
      return id === '_search' ? { interaction: 'search-type', action: 'R' } : { interaction: 'create', action: 'C' };
    case 'PUT':
      return { interaction: 'update', action: 'U' };
    case 'PATCH':
      return { interaction: 'patch', action: 'U' };
    case 'DELETE':
      return { interaction: 'delete', action: 'D' };
    default:
      return id ? { interaction: 'read', action: 'R' } : { interaction: 'search-type', action: 'R' };
  }
}
