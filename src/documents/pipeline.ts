import type { Attachment, DocumentReference, Extension, Observation, Practitioner, PractitionerQualification, Task } from '@medplum/fhirtypes';
import { createHash } from 'node:crypto';
import type { OcrProvider } from '../ai/ocr.js';
import { FhirError, informational } from '../fhir/outcome.js';
import type { FhirResponse } from '../fhir/types.js';
import type { SqlExecutor } from '../storage/sql.js';
import { type Job, type JobQueue, PermanentJobError } from '../jobs/job-queue.js';
import type { SearchRequest } from '../fhir/search/types.js';
import type { Logger } from '../logger.js';
import type { Repository, StoredResource, Writer } from '../storage/repository.js';
import { checkDocumentContent, DOCUMENT_MEDIA_TYPES, inlineDocuments } from './content-check.js';
import { type Credential, parseCredential } from './credential-parser.js';
import { DocumentRejected, type DocumentText } from './document-text.js';
import { extractText } from './extract-text.js';
import { type LabReport, type LabResult, parseLabResults } from './lab-parser.js';
import { sniffMediaType } from './sniff.js';

export const JOB_KIND = 'document-extract';
export const CARELENS = 'https://carelens.dev/fhir';
export const TASK_CODES = `${CARELENS}/CodeSystem/task-code`;
export const PIPELINE_STATUS = `${CARELENS}/CodeSystem/document-pipeline-status`;
export const CONFIDENCE_URL = `${CARELENS}/StructureDefinition/extraction-confidence`;
export const NORMALIZED_URL = `${CARELENS}/StructureDefinition/normalized-value`;
export const QUALIFICATION_STATUS_URL = `${CARELENS}/StructureDefinition/qualification-verification-status`;
export const SOURCE_DOCUMENT_URL = `${CARELENS}/StructureDefinition/source-document`;
export const REVIEW_TAG = { system: `${CARELENS}/CodeSystem/review`, code: 'needs-review', display: 'Extracted value needs clinician review' };

/** The stages a document goes through, as the pipeline Task's businessStatus. */
export type PipelineStage = 'INGESTED' | 'EXTRACTING' | 'EXTRACTED' | 'INDEXED' | 'FAILED';

interface ExtractPayload {
  documentId: string;
  taskId: string;
  fingerprint: string;
}

export interface PipelineOptions {
  maxBytes: number;
  reviewThreshold: number;
}

/**
 * The clinical document pipeline. When a DocumentReference with a PDF, PNG or JPEG attachment is
 * written, a Task (INGESTED) and a durable job are created in the same transaction; the job extracts
 * the text (EXTRACTING → EXTRACTED), keeps it with the document, turns the lab values in it into
 * preliminary, coded Observations derived from the document, opens review Tasks for uncertain
 * values, and finishes the Task (INDEXED) — or fails it with the reason (FAILED).
 */
export class DocumentPipeline {
  constructor(
    private readonly repo: Repository,
    /** The FHIR search parser (the router owns the definitions it needs). */
    private readonly searchOf: (type: string, query: [string, string][]) => SearchRequest,
    private readonly jobs: JobQueue,
    private readonly createOcr: () => OcrProvider,
    private readonly options: PipelineOptions,
    private readonly logger: Logger,
  ) {
    repo.writeHooks.push((w, stored) => this.onWrite(w, stored));
    jobs.handle(JOB_KIND, { run: (job) => this.run(job), failed: (job, reason) => this.failed(job, reason) });
  }

  private ocrProvider?: OcrProvider;

  /** Told when a document's text has been extracted and kept (the patient knowledge index reads it). */
  readonly textExtracted: ((doc: DocumentReference & { id: string }) => Promise<void>)[] = [];

  /** Largest document accepted (DOCUMENT_MAX_BYTES). */
  get maxBytes(): number {
    return this.options.maxBytes;
  }

  /** Created on first use: the OCR engine takes a moment to start and most processes never need it. */
  private ocr(): OcrProvider {
    this.ocrProvider ??= this.createOcr();
    return this.ocrProvider;
  }

  async close(): Promise<void> {
    await this.ocrProvider?.close();
    this.ocrProvider = undefined;
  }

  /** Inside the writing transaction: refuse bad document bytes, and start the pipeline for new content. */
  private async onWrite(w: Writer, stored: StoredResource): Promise<void> {
    const resource = stored.resource;
    if (!resource || (resource.resourceType !== 'Binary' && resource.resourceType !== 'DocumentReference')) {
      return;
    }
    for (const doc of inlineDocuments(resource)) {
      await checkDocumentContent(doc.bytes, doc.attachment.contentType, this.options.maxBytes, doc.where);
    }
    if (resource.resourceType === 'DocumentReference') {
      await this.startIfChanged(w, resource as DocumentReference & { id: string });
    }
  }

  private async startIfChanged(w: Writer, doc: DocumentReference & { id: string }): Promise<void> {
    const attachments = documentAttachments(doc);
    if (attachments.length === 0 || doc.status === 'entered-in-error') {
      return;
    }
    const fingerprint = createHash('sha256')
      .update(JSON.stringify(attachments.map((a) => [a.url ?? null, a.data ? createHash('sha256').update(a.data).digest('base64') : null, a.contentType ?? null])))
      .digest('base64url');
    const seen = await w.tx.query(`SELECT 1 FROM job WHERE kind = $1 AND payload->>'documentId' = $2 AND payload->>'fingerprint' = $3 LIMIT 1`, [
      JOB_KIND,
      doc.id,
      fingerprint,
    ]);
    if (seen.length > 0) {
      return; // metadata changed, the content did not: nothing to extract again
    }
    await this.enqueue(w, doc, fingerprint);
  }

  /** Starts (or restarts) extraction of a document: a new pipeline Task and job. Returns the Task. */
  async enqueue(w: Writer, doc: DocumentReference & { id: string }, fingerprint = 'manual-' + Date.now()): Promise<Task & { id: string }> {
    const task = await w.create<Task>({
      resourceType: 'Task',
      status: 'requested',
      intent: 'order',
      priority: 'routine',
      code: { coding: [{ system: TASK_CODES, code: 'extract-document', display: 'Extract lab values from a document' }] },
      businessStatus: stage('INGESTED'),
      focus: { reference: `DocumentReference/${doc.id}` },
      ...(doc.subject?.reference?.startsWith('Patient/') ? { for: { reference: doc.subject.reference } } : {}),
      authoredOn: w.now,
      lastModified: w.now,
    });
    await this.jobs.enqueue(w.tx, JOB_KIND, { documentId: doc.id, taskId: task.id, fingerprint } satisfies ExtractPayload);
    return task.resource as Task & { id: string };
  }

  private async run(job: Job): Promise<void> {
    const { documentId, taskId } = job.payload as ExtractPayload;
    const doc = await this.currentDocument(documentId);
    if (!doc) {
      throw new PermanentJobError(`DocumentReference/${documentId} no longer exists`);
    }
    await this.setStage(taskId, 'EXTRACTING');
    const { bytes, mediaType } = await this.documentBytes(doc);
    let text: DocumentText;
    try {
      text = await extractText(bytes, mediaType, this.ocr());
    } catch (err) {
      throw err instanceof DocumentRejected ? new PermanentJobError(`The document cannot be read: ${err.message}`) : err;
    }
    await this.repo.sql.query(
      `INSERT INTO document_text (document_id, version_id, content, plain) VALUES ($1, $2, $3, $4)
       ON CONFLICT (document_id) DO UPDATE SET version_id = EXCLUDED.version_id, content = EXCLUDED.content, plain = EXCLUDED.plain, created_at = now()`,
      [documentId, Number(doc.meta?.versionId ?? 1), JSON.stringify(text), plainText(text)],
    );
    for (const listener of this.textExtracted) await listener(doc as DocumentReference & { id: string });
    await this.setStage(taskId, 'EXTRACTED');
    // A document about a practitioner is a credential (degree, licence); one about a patient, a lab report.
    const credential = doc.subject?.reference?.startsWith('Practitioner/') ? parseCredential(text) : undefined;
    const report = credential ? undefined : parseLabResults(text);
    await this.repo.transaction(async (w) => {
      const outputs = credential ? [await this.writeQualification(w, doc, credential)] : await this.writeObservations(w, doc, report!);
      await this.updateTask(w, taskId, (task) => ({
        ...task,
        status: 'completed',
        businessStatus: stage('INDEXED'),
        executionPeriod: { ...task.executionPeriod, end: w.now },
        output: [
          { type: { text: 'pages' }, valueInteger: text.pages.length },
          { type: { text: 'text-method' }, valueCode: text.method },
          ...outputs.map((o) => ({ type: { text: o.resourceType }, valueReference: { reference: `${o.resourceType}/${o.id}` } })),
        ],
      }));
    });
    this.logger.info({ job: job.id, task: taskId, pages: text.pages.length, results: report?.results.length ?? 1 }, 'document extracted');
  }

  private async failed(job: Job, reason: string): Promise<void> {
    const { taskId } = job.payload as ExtractPayload;
    await this.repo.transaction((w) =>
      this.updateTask(w, taskId, (task) => ({ ...task, status: 'failed', businessStatus: stage('FAILED'), statusReason: { text: reason } })),
    );
  }

  private async setStage(taskId: string, name: PipelineStage): Promise<void> {
    await this.repo.transaction((w) =>
      this.updateTask(w, taskId, (task) => ({
        ...task,
        status: 'in-progress',
        businessStatus: stage(name),
        executionPeriod: { start: task.executionPeriod?.start ?? w.now },
      })),
    );
  }

  /** Writes the pipeline Task's next version (and its lastModified) within the writer's transaction. */
  private async updateTask(w: Writer, taskId: string, change: (task: Task & { id: string }) => Task): Promise<void> {
    const task = (await this.repo.read('Task', taskId, w.tx)).resource as Task & { id: string };
    await w.update<Task & { id: string }>({ ...change(task), id: taskId, lastModified: w.now });
  }

  /** One page of a search of the server's own resources (no caller's access applies: the pipeline is the server). */
  private search(type: string, query: [string, string][], count: number, db: SqlExecutor): Promise<StoredResource[]> {
    return this.repo.search({ ...this.searchOf(type, query), count, offset: 0 }, db);
  }

  private async currentDocument(id: string): Promise<(DocumentReference & { id: string }) | undefined> {
    try {
      return (await this.repo.read('DocumentReference', id)).resource as DocumentReference & { id: string };
    } catch (err) {
      if (err instanceof FhirError && (err.status === 404 || err.status === 410)) {
        return undefined;
      }
      throw err;
    }
  }

  /** The bytes of the document's first PDF/PNG/JPEG attachment: inline, or in a Binary on this server. */
  private async documentBytes(doc: DocumentReference): Promise<{ bytes: Uint8Array; mediaType: 'application/pdf' | 'image/png' | 'image/jpeg' }> {
    for (const attachment of documentAttachments(doc)) {
      let bytes: Buffer | undefined;
      if (attachment.data !== undefined) {
        bytes = Buffer.from(attachment.data, 'base64');
      } else {
        const binaryId = localBinaryId(attachment.url);
        if (binaryId) {
          const binary = await this.repo.read('Binary', binaryId).catch((err: unknown) => {
            throw err instanceof FhirError ? new PermanentJobError(`${attachment.url} cannot be read: ${err.message}`) : err;
          });
          bytes = Buffer.from((binary.resource as { data?: string }).data ?? '', 'base64');
        }
      }
      const mediaType = bytes && sniffMediaType(bytes);
      if (bytes && mediaType) {
        return { bytes: new Uint8Array(bytes), mediaType }; // pdfjs refuses Node Buffers
      }
    }
    throw new PermanentJobError('The document has no PDF, PNG or JPEG content on this server');
  }

  /**
   * The document's Observations, replaced rather than duplicated when it is processed again: an
   * earlier Observation for the same code (and occurrence) gets a new version, extra earlier ones are
   * deleted. Uncertain values carry a review tag and get a review Task.
   */
  private async writeObservations(w: Writer, doc: DocumentReference & { id: string }, report: LabReport): Promise<StoredResource<Observation>[]> {
    const earlier = await this.search('Observation', [['derived-from', `DocumentReference/${doc.id}`]], 1000, w.tx);
    const byKey = new Map<string, StoredResource[]>();
    for (const e of earlier) {
      const code = (e.resource as Observation).code?.coding?.[0]?.code ?? '';
      byKey.set(code, [...(byKey.get(code) ?? []), e]);
    }
    const written: StoredResource<Observation>[] = [];
    for (const result of report.results) {
      const observation = toObservation(result, report, doc, this.options.reviewThreshold);
      const previous = byKey.get(result.loinc)?.shift();
      const stored = previous
        ? (await w.update<Observation & { id: string }>({ ...observation, id: previous.id })).stored
        : await w.create(observation);
      written.push(stored as StoredResource<Observation>);
      if (result.confidence < this.options.reviewThreshold && (await this.openReviews(stored.id, w.tx)).length === 0) {
        await w.create<Task>({
          resourceType: 'Task',
          status: 'requested',
          intent: 'order',
          priority: result.plausible ? 'routine' : 'urgent',
          code: { coding: [{ system: TASK_CODES, code: 'review-extracted-value', display: 'Review a lab value read from a document' }] },
          description: `Check ${result.label} = ${result.comparator ?? ''}${result.value} ${result.unit} against the document (confidence ${result.confidence.toFixed(2)})`,
          focus: { reference: `Observation/${stored.id}` },
          ...(doc.subject ? { for: doc.subject } : {}),
          reasonReference: { reference: `DocumentReference/${doc.id}` },
          authoredOn: w.now,
        });
      }
    }
    for (const leftovers of byKey.values()) {
      for (const stale of leftovers) {
        await w.delete('Observation', stale.id);
      }
    }
    return written;
  }

  /**
   * A credential read from a document becomes a qualification of the Practitioner, pending review,
   * replacing one read earlier from the same document; an admin gets a Task to verify it.
   */
  private async writeQualification(w: Writer, doc: DocumentReference & { id: string }, credential: Credential): Promise<StoredResource> {
    const practitioner = (await this.repo.read('Practitioner', doc.subject!.reference!.split('/')[1], w.tx)).resource as Practitioner & { id: string };
    const source = `DocumentReference/${doc.id}`;
    const qualification: PractitionerQualification = {
      extension: [
        { url: QUALIFICATION_STATUS_URL, valueCode: 'pending-review' },
        { url: SOURCE_DOCUMENT_URL, valueReference: { reference: source } },
        { url: CONFIDENCE_URL, valueDecimal: Math.round(credential.confidence * 1000) / 1000 },
      ],
      ...(credential.licenceNumber ? { identifier: [{ value: credential.licenceNumber }] } : {}),
      code: { text: credential.title ?? 'Qualification (not read: see the document)' },
      ...(credential.issued ? { period: { start: credential.issued } } : {}),
      ...(credential.issuer ? { issuer: { display: credential.issuer } } : {}),
    };
    const others = (practitioner.qualification ?? []).filter(
      (q) => !q.extension?.some((e) => e.url === SOURCE_DOCUMENT_URL && e.valueReference?.reference === source),
    );
    const { stored } = await w.update<Practitioner & { id: string }>({ ...practitioner, qualification: [...others, qualification] });
    await w.create<Task>({
      resourceType: 'Task',
      status: 'requested',
      intent: 'order',
      priority: 'routine',
      code: { coding: [{ system: TASK_CODES, code: 'verify-credential', display: 'Verify a practitioner credential read from a document' }] },
      description: `Verify ${qualification.code.text}${credential.licenceNumber ? ` (${credential.licenceNumber})` : ''} against the document and the issuer`,
      focus: { reference: `Practitioner/${practitioner.id}` },
      reasonReference: { reference: source },
      performerType: [{ text: 'Administrator' }],
      authoredOn: w.now,
    });
    return stored;
  }

  /** The latest pipeline Task of a document (its status is the upload's polling location). */
  async latestTask(documentId: string, db: SqlExecutor = this.repo.sql): Promise<(Task & { id: string }) | undefined> {
    const query: [string, string][] = [
      ['focus', `DocumentReference/${documentId}`],
      ['code', `${TASK_CODES}|extract-document`],
      ['_sort', '-_lastUpdated'],
    ];
    const [latest] = await this.search('Task', query, 1, db);
    return latest?.resource as (Task & { id: string }) | undefined;
  }

  /**
   * A write sent with Prefer: respond-async that started the pipeline (a DocumentReference created
   * or changed, alone or in a transaction) is answered 202 Accepted with the Task's polling URL in
   * Content-Location (FHIR asynchronous request pattern); any other response is kept as it is.
   */
  async asyncResponse(response: FhirResponse, baseUrl: string): Promise<FhirResponse> {
    const resource = response.resource;
    let written: { id?: string; at?: string } | undefined;
    if (resource?.resourceType === 'DocumentReference') {
      written = { id: resource.id, at: resource.meta?.lastUpdated };
    } else if (resource?.resourceType === 'Bundle') {
      // Locations are absolute (or relative) URLs: .../DocumentReference/[id]/_history/[vid]
      const located = resource.entry
        ?.map((e) => ({ id: e.response?.location?.match(/(?:^|\/)DocumentReference\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/)?.[1], at: e.response?.lastModified }))
        .find((e) => e.id);
      written = located;
    }
    const task = written?.id && response.status < 300 ? await this.latestTask(written.id) : undefined;
    // Only a Task this very write created (same transaction, same timestamp): a metadata-only change starts nothing.
    if (!task || !written?.at || task.authoredOn !== written.at) {
      return response;
    }
    const documentId = written.id;
    return {
      status: 202,
      resource: informational(`Accepted: DocumentReference/${documentId} is being processed by Task/${task.id}; poll ${baseUrl}/Task/${task.id}/$status`),
      headers: { 'Content-Location': `${baseUrl}/Task/${task.id}/$status`, Location: `${baseUrl}/DocumentReference/${documentId}` },
    };
  }

  /** The review Tasks still open for an extracted Observation. */
  async openReviews(observationId: string, db: SqlExecutor = this.repo.sql): Promise<(Task & { id: string })[]> {
    const query: [string, string][] = [
      ['focus', `Observation/${observationId}`],
      ['code', `${TASK_CODES}|review-extracted-value`],
      ['status', 'requested,in-progress'],
    ];
    return (await this.search('Task', query, 100, db)).map((found) => found.resource as Task & { id: string });
  }


}

function stage(name: PipelineStage): Task['businessStatus'] {
  return { coding: [{ system: PIPELINE_STATUS, code: name }], text: name };
}

/** The attachments the pipeline can read: PDF, PNG or JPEG (declared, or inline and sniffed). */
function documentAttachments(doc: DocumentReference): Attachment[] {
  return (doc.content ?? [])
    .map((c) => c.attachment)
    .filter((a): a is Attachment => {
      if (!a) {
        return false;
      }
      if (a.data !== undefined) {
        // Magic bytes sit in the first KiB (1,368 base64 characters decode to 1,026 bytes): no need to decode a whole note.
        return sniffMediaType(Buffer.from(a.data.slice(0, 1368), 'base64')) !== undefined;
      }
      return localBinaryId(a.url) !== undefined && (!a.contentType || DOCUMENT_MEDIA_TYPES.includes(a.contentType.split(';')[0].trim().toLowerCase()));
    });
}

function localBinaryId(url: string | undefined): string | undefined {
  return url?.match(/(?:^|\/)Binary\/([A-Za-z0-9\-.]{1,64})$/)?.[1];
}

function plainText(text: DocumentText): string {
  return text.pages.map((p) => p.lines.map((l) => l.text).join('\n')).join('\n\f\n');
}

const INTERPRETATION: Record<NonNullable<LabResult['flag']>, string> = {
  H: 'High',
  L: 'Low',
  HH: 'Critical high',
  LL: 'Critical low',
  A: 'Abnormal',
  N: 'Normal',
};

function quantity(value: number, unit: string, ucum: string | undefined): NonNullable<Observation['valueQuantity']> {
  // FHIR forbids empty strings: a dimensionless result (pH, specific gravity) prints no unit.
  return { value, ...(unit ? { unit } : {}), ...(ucum ? { system: 'http://unitsofmeasure.org', code: ucum } : {}) };
}

/** One extracted lab value as a preliminary, coded Observation derived from the document. */
function toObservation(result: LabResult, report: LabReport, doc: DocumentReference & { id: string }, threshold: number): Observation {
  const extension: Extension[] = [{ url: CONFIDENCE_URL, valueDecimal: Math.round(result.confidence * 1000) / 1000 }];
  if (result.normalized) {
    extension.push({ url: NORMALIZED_URL, valueQuantity: quantity(result.normalized.value, result.normalized.ucum, result.normalized.ucum) });
  }
  const value = quantity(result.value, result.unit, result.ucum);
  if (result.comparator) {
    value.comparator = result.comparator;
  }
  const range = result.referenceRange;
  const effective = report.specimenDate ?? doc.context?.period?.start ?? doc.date;
  // DocumentReference.subject (Patient, Practitioner, Group, Device) is the Observation's subject as well.
  const subject = doc.subject as Observation['subject'];
  return {
    resourceType: 'Observation',
    ...(result.confidence < threshold ? { meta: { tag: [REVIEW_TAG] } } : {}),
    extension,
    status: 'preliminary',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory', display: 'Laboratory' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: result.loinc, display: result.display }], text: result.label },
    ...(subject ? { subject } : {}),
    ...(effective ? { effectiveDateTime: effective } : {}),
    ...(report.reportDate ? { issued: toInstant(report.reportDate) } : {}),
    valueQuantity: value,
    ...(result.flag
      ? {
          interpretation: [
            { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: result.flag, display: INTERPRETATION[result.flag] }] },
          ],
        }
      : {}),
    ...(range && (range.low !== undefined || range.high !== undefined || range.text)
      ? {
          referenceRange: [
            {
              ...(range.low !== undefined ? { low: quantity(range.low, result.unit, result.ucum) } : {}),
              ...(range.high !== undefined ? { high: quantity(range.high, result.unit, result.ucum) } : {}),
              ...(range.text ? { text: range.text } : {}),
            },
          ],
        }
      : {}),
    derivedFrom: [{ reference: `DocumentReference/${doc.id}` }],
  };
}

/** issued is an instant: a date alone becomes midnight UTC of that day. */
function toInstant(date: string): string {
  return /^\d{4}-\d{2}-\d{2}$/.test(date) ? `${date}T00:00:00Z` : date;
}
