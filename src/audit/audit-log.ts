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

/** When the background move runs. */
export interface AuditPacing {
  /** Traffic counts as paused once no event has been recorded for this long; the backlog is then moved whole. */
  quietMs: number;
  /** Under sustained traffic the move waits, but lets no more than this many events… */
  backlogLimit: number;
  /** …nor any event older than this wait: past either bound, batches move until the backlog is within both. */
  maxDelayMs: number;
}

/** An audit search waits for at most some 10,000 events to be indexed (2–4 s on two cores), and only under sustained load. */
const DEFAULT_PACING: AuditPacing = { quietMs: 250, backlogLimit: 10_000, maxDelayMs: 30_000 };

/**
 * The audit trail, as FHIR AuditEvents following the IHE Basic Audit Log Patterns (BALP).
 *
 * A request awaits record(): its event is committed to the audit outbox (one multi-row insert for
 * all events arriving meanwhile) before the response goes out, and when that fails the request
 * fails. Outbox rows become searchable AuditEvent resources in bulk, before any read of the audit
 * trail and otherwise in the background. Indexing an event costs the database several times what
 * serving the read it records did, so the background move yields to traffic: it runs when traffic
 * pauses and stops between batches when traffic resumes; under sustained traffic it moves only
 * what is past its bounds, batch by batch, so the indexing keeps pace with the arrivals instead of
 * stalling requests with the whole backlog at once. The bounds keep the wait of a read of the
 * audit trail (which moves everything first) short. Rows are moved in the same transaction that
 * creates the resources, so a crash loses none and several processes never move one twice.
 */
export class AuditLog {
  private queue: { event: AuditEvent; done: (err?: unknown) => void }[] = [];
  private flushing = false;
  /** The move in progress (or a settled promise): moves run one after another. */
  private moving: Promise<unknown> = Promise.resolve();
  private backgroundMoving = false;
  private timer?: NodeJS.Timeout;
  /** Events this process committed to the outbox and has not moved, oldest first: when and how many per insert. */
  private backlog: { at: number; count: number }[] = [];
  private backlogCount = 0;
  private lastRecordedAt = 0;

  constructor(
    private readonly repo: Repository,
    private readonly logger: Logger,
    private readonly pacing: AuditPacing = DEFAULT_PACING,
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

  /** Moves every pending outbox row into AuditEvent resources (before a read of the audit trail, and at shutdown). */
  materialize(): Promise<void> {
    return this.move(() => false);
  }

  start(intervalMs = 200): void {
    this.timer = setInterval(() => this.backgroundMove(Date.now()), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.materialize();
  }

  /**
   * Traffic paused: move everything, until traffic resumes. Sustained traffic: move only while the
   * backlog is past its bounds. An empty backlog still moves when quiet: other processes (HTTP
   * workers, the CLI) write to the same outbox.
   */
  private backgroundMove(now: number): void {
    const quiet = now - this.lastRecordedAt >= this.pacing.quietMs;
    if (this.backgroundMoving || !(quiet || this.overdue(now))) {
      return;
    }
    const seen = this.lastRecordedAt;
    this.backgroundMoving = true;
    this.move(() => !this.overdue(Date.now()) && (!quiet || this.lastRecordedAt !== seen))
      .catch((err: unknown) => this.logger.error({ err: { message: (err as Error).message } }, 'audit materialization failed'))
      .finally(() => {
        this.backgroundMoving = false;
      });
  }

  private overdue(now: number): boolean {
    return this.backlogCount > this.pacing.backlogLimit || (this.backlog.length > 0 && now - this.backlog[0].at > this.pacing.maxDelayMs);
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        // One JSON array rather than a jsonb[]: pg escapes every character of every element of an array parameter.
        await this.repo.sql.query('INSERT INTO audit_outbox (event) SELECT jsonb_array_elements($1::jsonb)', [JSON.stringify(batch.map((item) => item.event))]);
        this.lastRecordedAt = Date.now();
        this.backlog.push({ at: this.lastRecordedAt, count: batch.length });
        this.backlogCount += batch.length;
        batch.forEach((item) => item.done());
      } catch (err) {
        batch.forEach((item) => item.done(err));
      }
    }
    this.flushing = false;
  }

  /** Moves batches, oldest first, until `enough()` or the outbox is empty; after any move already running. */
  private move(enough: () => boolean): Promise<void> {
    const run = this.moving.then(async () => {
      for (let moved = MATERIALIZE_BATCH; moved === MATERIALIZE_BATCH && !enough(); ) {
        moved = await this.moveBatch();
      }
    });
    this.moving = run.catch(() => undefined);
    return run;
  }

  /** Moves one batch of outbox rows (any process's) and takes as many off this process's backlog, oldest first. */
  private async moveBatch(): Promise<number> {
    const began = Date.now();
    const moved = await this.repo.transaction(async (w) => {
      const rows = await w.tx.query<{ event: AuditEvent | string }>(
        `DELETE FROM audit_outbox WHERE seq IN (SELECT seq FROM audit_outbox ORDER BY seq LIMIT ${MATERIALIZE_BATCH} FOR UPDATE SKIP LOCKED)
         RETURNING event`,
      );
      for (const row of rows) {
        await w.createServerAuthored(typeof row.event === 'string' ? (JSON.parse(row.event) as AuditEvent) : row.event);
      }
      return rows.length;
    });
    let left = moved;
    while (left > 0 && this.backlog.length > 0) {
      const oldest = this.backlog[0];
      const taken = Math.min(left, oldest.count);
      oldest.count -= taken;
      left -= taken;
      this.backlogCount -= taken;
      if (oldest.count === 0) {
        this.backlog.shift();
      }
    }
    if (moved < MATERIALIZE_BATCH) {
      // The outbox is empty (rows are any process's): what this process committed before is moved, by it or another.
      while (this.backlog.length > 0 && this.backlog[0].at < began) {
        this.backlogCount -= this.backlog.shift()!.count;
      }
    }
    return moved;
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
