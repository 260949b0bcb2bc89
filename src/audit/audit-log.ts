import type { AuditEvent, AuditEventAgent, AuditEventEntity } from '@medplum/fhirtypes';
import type { Logger } from '../logger.js';
import type { Repository } from '../storage/repository.js';

/** One audited happening, before it becomes an AuditEvent. */
export interface AuditRecord {
  kind: 'rest' | 'login' | 'token';
  /** FHIR restful-interaction code (read, search-type, create, …) for `rest`; login / logout; token-issue. */
  interaction: string;
  action: 'C' | 'R' | 'U' | 'D' | 'E';
  /** HTTP status of the outcome (2xx success, 4xx refused, 5xx failed). */
  status: number;
  requestId?: string;
  clientId?: string;
  userId?: string;
  /** "Practitioner/1", "Patient/2" — who the user is in FHIR terms. */
  fhirUser?: string;
  ip?: string;
  /** The resources acted on, as relative references. */
  what?: string[];
  /** Patient the access concerns (launch context or the resource's compartment). */
  patient?: string;
  /** Query string of a search (kept in the AuditEvent, which only admins can read; never logged). */
  query?: string;
}

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const AUDIT_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-event-type';
const BALP_ENTITY = 'https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType';

/** AuditEvents turned into indexed resources per transaction: small enough not to stall the event loop for long. */
const MATERIALIZE_BATCH = 100;
/** The background move waits for this long without a new event… */
const QUIET_MS = 250;
/** …unless this many events have gathered in the outbox since the last move… */
const BACKLOG_LIMIT = 5000;
/** …or the oldest of them has waited this long. */
const MAX_DELAY_MS = 10_000;

/**
 * The audit trail, as FHIR AuditEvents following the IHE Basic Audit Log Patterns (BALP).
 *
 * A request awaits record(): its event is committed to the audit outbox (one multi-row insert for
 * all events arriving meanwhile) before the response goes out, and when that fails the request
 * fails. Outbox rows become searchable AuditEvent resources in bulk, before any read of the audit
 * trail and otherwise in the background. Indexing an event costs the database several times what
 * serving the read it records did, so the background move yields to traffic: it runs once no event
 * has been recorded for a moment, and under sustained traffic once enough events or seconds have
 * gathered. Rows are moved in the same transaction that creates the resources, so a crash loses
 * none and several workers never move one twice.
 */
export class AuditLog {
  private queue: { event: AuditEvent; done: (err?: unknown) => void }[] = [];
  private flushing = false;
  private materializing?: Promise<void>;
  private timer?: NodeJS.Timeout;
  /** Events this process committed to the outbox since its last move, and when the first and last of them were. */
  private backlog = { count: 0, firstAt: 0, lastAt: 0 };

  constructor(
    private readonly repo: Repository,
    private readonly logger: Logger,
  ) {}

  record(record: AuditRecord): Promise<void> {
    const event = toAuditEvent(record);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ event, done: (err) => (err ? reject(err) : resolve()) });
      if (!this.flushing) {
        void this.flush();
      }
    });
  }

  /** Moves pending outbox rows into AuditEvent resources; concurrent callers share one run. */
  materialize(): Promise<void> {
    this.materializing ??= (async () => {
      this.backlog = { count: 0, firstAt: 0, lastAt: 0 };
      await this.moveAll();
    })().finally(() => {
      this.materializing = undefined;
    });
    return this.materializing;
  }

  start(intervalMs = 200): void {
    this.timer = setInterval(() => {
      if (this.backgroundMoveDue(Date.now())) {
        this.materialize().catch((err: unknown) => this.logger.error({ err: { message: (err as Error).message } }, 'audit materialization failed'));
      }
    }, intervalMs);
    this.timer.unref();
  }

  /**
   * Whether the background move should run now. An empty backlog still moves: other processes
   * (workers, the CLI) write to the same outbox.
   */
  private backgroundMoveDue(now: number): boolean {
    const { count, firstAt, lastAt } = this.backlog;
    return count === 0 || now - lastAt >= QUIET_MS || count >= BACKLOG_LIMIT || now - firstAt >= MAX_DELAY_MS;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.materialize();
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        // One JSON array rather than a jsonb[]: pg escapes every character of every element of an array parameter.
        await this.repo.sql.query('INSERT INTO audit_outbox (event) SELECT jsonb_array_elements($1::jsonb)', [JSON.stringify(batch.map((item) => item.event))]);
        const now = Date.now();
        this.backlog = { count: this.backlog.count + batch.length, firstAt: this.backlog.firstAt || now, lastAt: now };
        batch.forEach((item) => item.done());
      } catch (err) {
        batch.forEach((item) => item.done(err));
      }
    }
    this.flushing = false;
  }

  private async moveAll(): Promise<void> {
    let moved: number;
    do {
      moved = await this.repo.transaction(async (w) => {
        const rows = await w.tx.query<{ event: AuditEvent | string }>(
          `DELETE FROM audit_outbox WHERE seq IN (SELECT seq FROM audit_outbox ORDER BY seq LIMIT ${MATERIALIZE_BATCH} FOR UPDATE SKIP LOCKED)
           RETURNING event`,
        );
        for (const row of rows) {
          await w.createServerAuthored(typeof row.event === 'string' ? (JSON.parse(row.event) as AuditEvent) : row.event);
        }
        return rows.length;
      });
    } while (moved === MATERIALIZE_BATCH);
  }
}

function toAuditEvent(r: AuditRecord): AuditEvent {
  const agents: AuditEventAgent[] = [];
  if (r.userId || r.fhirUser) {
    agents.push({
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP', display: 'information recipient' }] },
      who: r.fhirUser ? { reference: r.fhirUser } : { identifier: { system: 'urn:carelens:user', value: r.userId } },
      ...(r.userId ? { altId: r.userId } : {}),
      requestor: true,
      ...(r.ip ? { network: { address: r.ip, type: '2' as const } } : {}),
    });
  }
  if (r.clientId) {
    agents.push({
      type: { coding: [{ system: DCM, code: '110150', display: 'Application' }] },
      who: { identifier: { system: 'urn:carelens:client', value: r.clientId } },
      requestor: agents.length === 0,
      ...(agents.length === 0 && r.ip ? { network: { address: r.ip, type: '2' as const } } : {}),
    });
  }
  if (agents.length === 0) {
    agents.push({ who: { display: 'unauthenticated caller' }, requestor: true, ...(r.ip ? { network: { address: r.ip, type: '2' as const } } : {}) });
  }
  const entities: AuditEventEntity[] = [];
  for (const ref of r.what ?? []) {
    entities.push({ what: { reference: ref }, type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' } });
  }
  if (r.patient) {
    entities.push({
      what: { reference: `Patient/${r.patient}` },
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' },
      role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' },
    });
  }
  if (r.query) {
    entities.push({ type: { system: BALP_ENTITY, code: 'QueryString' }, query: Buffer.from(r.query).toString('base64') });
  }
  if (r.requestId) {
    entities.push({ what: { identifier: { value: r.requestId } }, type: { system: BALP_ENTITY, code: 'XrequestId' } });
  }
  const type =
    r.kind === 'rest'
      ? { system: AUDIT_TYPE, code: 'rest', display: 'RESTful Operation' }
      : { system: DCM, code: '110114', display: 'User Authentication' };
  const subtype =
    r.kind === 'rest'
      ? { system: 'http://hl7.org/fhir/restful-interaction', code: r.interaction }
      : r.kind === 'login'
        ? { system: DCM, code: '110122', display: 'Login' }
        : { system: 'urn:carelens:audit', code: 'token-issue', display: 'Access token issued' };
  return {
    resourceType: 'AuditEvent',
    type,
    subtype: [subtype],
    action: r.action,
    recorded: new Date().toISOString(),
    outcome: r.status < 400 ? '0' : r.status < 500 ? '4' : '8',
    ...(r.status >= 400 ? { outcomeDesc: `HTTP ${r.status}` } : {}),
    agent: agents,
    source: {
      observer: { display: 'carelens' },
      type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
    },
    ...(entities.length ? { entity: entities } : {}),
  };
}
