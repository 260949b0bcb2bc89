import type { Bundle, Observation, Task } from '@medplum/fhirtypes';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BACKENDS, clientCredentialsToken, create, hasSharedData, OPERATOR, SHARED_DATA, startServer, type TestServer, useServer } from './harness.js';
import { generateLabDocuments } from './fixtures/lab-documents.js';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodeGrayPng } from '../src/documents/preprocess.js';

/**
 * The document pipeline through the HTTP API: uploads (raw Binary, form, Parameters), rejections
 * that store nothing, encryption at rest, the asynchronous Task, extracted Observations compared
 * with each document's ground truth, re-processing without duplicates, and clinician review.
 */

interface Truth {
  document: string;
  kind: string;
  results: { loinc: string; loincAlt?: string[]; value: number; ucum: string }[];
}

/** Documents with ground truth: the shared lab reports when present, else the project's own fixtures. */
async function labDocuments(): Promise<{ dir: string; truths: Truth[] }> {
  const shared = join(SHARED_DATA, 'lab-reports');
  if (hasSharedData('lab-reports')) {
    const truths = readdirSync(shared).filter((f) => f.endsWith('.truth.json')).map((f) => JSON.parse(readFileSync(join(shared, f), 'utf8')) as Truth);
    return { dir: shared, truths };
  }
  console.warn(`${shared} is absent: the pipeline tests use the project's own generated lab documents only`);
  const dir = mkdtempSync(join(tmpdir(), 'carelens-lab-'));
  await generateLabDocuments(dir);
  const truths = readdirSync(dir).filter((f) => f.endsWith('.truth.json')).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Truth);
  return { dir, truths };
}

/** A PDF whose trailer names an /Encrypt dictionary the empty password does not open. */
function encryptedPdf(): Buffer {
  const hex = (n: number, seed: number): string => Array.from({ length: n }, (_, i) => ((i * 37 + seed) % 256).toString(16).padStart(2, '0')).join('');
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>',
    `<< /Filter /Standard /V 1 /R 2 /O <${hex(32, 5)}> /U <${hex(32, 11)}> /P -4 >>`,
  ];
  let out = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R /Encrypt 4 0 R /ID [<${hex(16, 3)}> <${hex(16, 3)}>] >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

async function waitForTask(server: TestServer, statusUrl: string): Promise<{ status: number; body: any }> {
  for (let i = 0; i < 300; i++) {
    const res = await server.request(statusUrl);
    if (res.status !== 202) {
      return res;
    }
    expect(['INGESTED', 'EXTRACTING', 'EXTRACTED']).toContain(res.headers.get('X-Progress'));
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${statusUrl} did not finish`);
}

function matches(observations: Observation[], truth: Truth): { found: number; total: number } {
  let found = 0;
  for (const expected of truth.results) {
    const codes = [expected.loinc, ...(expected.loincAlt ?? [])];
    if (
      observations.some(
        (o) => codes.includes(o.code?.coding?.[0]?.code ?? '') && Math.abs((o.valueQuantity?.value ?? NaN) - expected.value) < 1e-6 && o.valueQuantity?.code === expected.ucum,
      )
    ) {
      found++;
    }
  }
  return { found, total: truth.results.length };
}

async function upload(server: TestServer, patientId: string, bytes: Buffer, contentType: string, name: string): Promise<{ status: number; headers: Headers; body: any }> {
  const form = new FormData();
  form.append('patient', `Patient/${patientId}`);
  form.append('file', new Blob([bytes], { type: contentType }), name);
  return server.request('DocumentReference/$upload', { method: 'POST', body: form });
}

describe.each(BACKENDS)('document pipeline on %s', (backend) => {
  const server = useServer(backend);
  let patientId: string;
  let docs: { dir: string; truths: Truth[] };
  const count = async (type: string): Promise<number> => (await server.request(`${type}?_summary=count`)).body.total;

  beforeAll(async () => {
    patientId = (await create(server, { resourceType: 'Patient', name: [{ family: 'Upload', given: ['Ada'] }] })).id;
    docs = await labDocuments();
  });

  const firstOf = (kind: string): Truth => {
    const truth = docs.truths.find((t) => t.kind === kind);
    if (!truth) {
      throw new Error(`no ${kind} document with ground truth`);
    }
    return truth;
  };

  test('a Binary sent in its native form is stored encrypted and read back byte for byte', async () => {
    const pdf = readFileSync(join(docs.dir, firstOf('digital-pdf').document));
    const created = await server.request('Binary', {
      method: 'POST',
      body: pdf,
      headers: { 'Content-Type': 'application/pdf', 'X-Security-Context': `Patient/${patientId}` },
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(created.body.securityContext).toEqual({ reference: `Patient/${patientId}` });

    const native = await fetch(`${server.base}/Binary/${id}`, { headers: { Authorization: `Bearer ${server.token}`, Accept: 'application/pdf' } });
    expect(native.status).toBe(200);
    expect(native.headers.get('content-type')).toBe('application/pdf');
    expect(native.headers.get('x-content-type-options')).toBe('nosniff');
    expect(Buffer.from(await native.arrayBuffer()).equals(pdf)).toBe(true);

    const json = await server.request(`Binary/${id}`, { headers: { Accept: 'application/fhir+json' } });
    expect(json.body.resourceType).toBe('Binary');
    expect(Buffer.from(json.body.data, 'base64').equals(pdf)).toBe(true);

    // Its securityContext puts it in the patient's compartment, where patient-limited access is decided.
    const [row] = await server.sql.query<{ compartments: string[] | string }>("SELECT compartments FROM resource WHERE resource_type = 'Binary' AND id = $1", [id]);
    expect(String(row.compartments)).toContain(`Patient/${patientId}`);

    // At rest: neither the current row nor the history version holds the plaintext.
    const rows = await server.sql.query<{ content: string }>(
      "SELECT content::text AS content FROM resource WHERE resource_type = 'Binary' AND id = $1 UNION ALL SELECT content::text FROM resource_history WHERE resource_type = 'Binary' AND id = $1",
      [id],
    );
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      const stored = JSON.parse(row.content);
      expect(stored.data).not.toBe(pdf.toString('base64'));
      expect(stored._data.extension[0].url).toBe('https://carelens.dev/fhir/StructureDefinition/encrypted-at-rest');
      expect(stored._data.extension[0].valueString).toMatch(/^[\w-]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    }
  });

  test('content over 1 MB is accepted: the FHIR string limit does not apply to base64Binary', async () => {
    const bytes = Buffer.alloc(1536 * 1024, 0x5a);
    const created = await server.request('Binary', { method: 'POST', body: bytes, headers: { 'Content-Type': 'application/octet-stream' } });
    expect(created.status).toBe(201);
    const native = await fetch(`${server.base}/Binary/${created.body.id}`, { headers: { Authorization: `Bearer ${server.token}`, Accept: 'application/octet-stream' } });
    expect(Buffer.from(await native.arrayBuffer()).equals(bytes)).toBe(true);
    // A plain string over 1 MB is still refused.
    const long = await server.request('Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ text: 'x'.repeat(1024 * 1024 + 1) }] } });
    expect(long.status).toBe(422);
  });

  test.each([
    ['an empty file', Buffer.alloc(0), 'application/pdf', 400, /empty/],
    ['an ELF executable declared as a PDF', Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), Buffer.alloc(64)]), 'application/pdf', 415, /ELF executable/],
    ['a Windows executable declared as a JPEG', Buffer.concat([Buffer.from('MZ'), Buffer.alloc(128, 1)]), 'image/jpeg', 415, /Windows executable/],
    ['text declared as a PDF', Buffer.from('hello, not a pdf'), 'application/pdf', 415, /not a PDF, PNG or JPEG/],
    ['a corrupt PDF', Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(300, 0x41)]), 'application/pdf', 422, /PDF/],
    ['a password-protected PDF', encryptedPdf(), 'application/pdf', 422, /password/i],
  ])('%s is refused with a precise OperationOutcome and nothing is stored', async (_name, bytes, type, status, message) => {
    const before = [await count('Binary'), await count('DocumentReference'), await count('Task')];
    for (const res of [
      await server.request('Binary', { method: 'POST', body: bytes, headers: { 'Content-Type': type } }),
      await upload(server, patientId, bytes, type, 'upload.bin'),
    ]) {
      expect(res.status).toBe(status);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.body.issue[0].details.text).toMatch(message);
    }
    expect([await count('Binary'), await count('DocumentReference'), await count('Task')]).toEqual(before);
  });

  test('a digital lab report uploaded from a form becomes coded, preliminary Observations that match its ground truth', async () => {
    const truth = firstOf('digital-pdf');
    const res = await upload(server, patientId, readFileSync(join(docs.dir, truth.document)), 'application/octet-stream', truth.document);
    expect(res.status).toBe(202);
    const statusUrl = res.headers.get('Content-Location')!;
    expect(statusUrl).toMatch(/\/Task\/[^/]+\/\$status$/);
    const documentUrl = res.headers.get('Location')!;
    const done = await waitForTask(server, statusUrl);
    expect(done.status).toBe(200);
    const bundle = done.body as Bundle;
    expect(bundle.type).toBe('batch-response');
    const task = bundle.entry![0].resource as Task;
    expect(task.status).toBe('completed');
    expect(task.businessStatus?.text).toBe('INDEXED');
    const observations = bundle.entry!.map((e) => e.resource!).filter((r): r is Observation => r.resourceType === 'Observation');
    const { found, total } = matches(observations, truth);
    expect(found / total).toBeGreaterThanOrEqual(0.95);
    const documentId = documentUrl.split('/').pop();
    for (const o of observations) {
      expect(o.status).toBe('preliminary');
      expect(o.category?.[0]?.coding?.[0]?.code).toBe('laboratory');
      expect(o.code?.coding?.[0]?.system).toBe('http://loinc.org');
      expect(o.subject).toEqual({ reference: `Patient/${patientId}` });
      expect(o.derivedFrom).toEqual([{ reference: `DocumentReference/${documentId}` }]);
      expect(o.valueQuantity?.system).toBe('http://unitsofmeasure.org');
      const confidence = o.extension?.find((e) => e.url.endsWith('/extraction-confidence'))?.valueDecimal;
      expect(confidence).toBeGreaterThan(0);
      expect(confidence).toBeLessThanOrEqual(1);
    }
    // The document's text is searchable, and the Observations are found by the document they came from.
    const analyte = observations[0].code!.text!;
    const byText = await server.request(`DocumentReference?_content=${encodeURIComponent(analyte)}&subject=Patient/${patientId}`);
    expect(byText.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toContain(documentId);
    const derived = await server.request(`Observation?derived-from=DocumentReference/${documentId}&_count=200`);
    expect(derived.body.entry).toHaveLength(observations.length);

    // Processing again replaces the derived Observations: same ids, new versions, no duplicates.
    const again = await server.request(`DocumentReference/${documentId}/$extract`, { method: 'POST', json: { resourceType: 'Parameters' } });
    expect(again.status).toBe(202);
    expect((await waitForTask(server, again.headers.get('Content-Location')!)).status).toBe(200);
    const after = await server.request(`Observation?derived-from=DocumentReference/${documentId}&_count=200`);
    expect(after.body.entry.map((e: { resource: Observation }) => e.resource.id).sort()).toEqual(observations.map((o) => o.id).sort());
    expect(after.body.entry.every((e: { resource: Observation }) => e.resource.meta?.versionId === '2')).toBe(true);
  });

  test('plain FHIR writes of a document with Prefer: respond-async are answered 202 with the polling URL', async () => {
    const pdf = readFileSync(join(docs.dir, firstOf('digital-pdf').document));
    const doc = {
      resourceType: 'DocumentReference',
      status: 'current',
      subject: { reference: `Patient/${patientId}` },
      content: [{ attachment: { contentType: 'application/pdf', data: pdf.toString('base64') } }],
    };
    const direct = await server.request('DocumentReference', { method: 'POST', json: doc, headers: { Prefer: 'respond-async' } });
    expect(direct.status).toBe(202);
    expect(direct.headers.get('Content-Location')).toMatch(/\/Task\/[^/]+\/\$status$/);
    const documentId = direct.headers.get('Location')!.split('/').pop()!;
    expect((await waitForTask(server, direct.headers.get('Content-Location')!)).status).toBe(200);

    // A metadata-only change starts nothing: the ordinary response comes back.
    const current = (await server.request(`DocumentReference/${documentId}`)).body;
    const relabel = await server.request(`DocumentReference/${documentId}`, { method: 'PUT', json: { ...current, description: 'relabelled' }, headers: { Prefer: 'respond-async' } });
    expect(relabel.status).toBe(200);

    const transaction = await server.request('', {
      method: 'POST',
      headers: { Prefer: 'respond-async' },
      json: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:9d5b7a1e-0000-4000-8000-000000000001', resource: { resourceType: 'Binary', contentType: 'application/pdf', data: pdf.toString('base64') }, request: { method: 'POST', url: 'Binary' } },
          {
            resource: { ...doc, content: [{ attachment: { contentType: 'application/pdf', url: 'urn:uuid:9d5b7a1e-0000-4000-8000-000000000001' } }] },
            request: { method: 'POST', url: 'DocumentReference' },
          },
        ],
      },
    });
    expect(transaction.status).toBe(202);
    const done = await waitForTask(server, transaction.headers.get('Content-Location')!);
    expect(done.status).toBe(200);
    expect((done.body as Bundle).entry!.filter((e) => e.resource?.resourceType === 'Observation').length).toBe(firstOf('digital-pdf').results.length);
  });

  test('a document that cannot be read fails alone: its Task says why, the next document is processed', async () => {
    const broken = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(200, 7)]);
    const bad = await upload(server, patientId, broken, 'image/png', 'broken.png');
    expect(bad.status).toBe(202);
    const failed = await waitForTask(server, bad.headers.get('Content-Location')!);
    expect(failed.status).toBe(422);
    expect(failed.body.issue[0].details.text).toMatch(/could not be processed \(FAILED\)/);
    const taskId = bad.headers.get('Content-Location')!.split('/').slice(-2)[0];
    const task = (await server.request(`Task/${taskId}`)).body as Task;
    expect(task.status).toBe('failed');
    expect(task.statusReason?.text).toBeTruthy();

    const truth = firstOf('digital-pdf');
    const good = await upload(server, patientId, readFileSync(join(docs.dir, truth.document)), 'application/pdf', truth.document);
    expect((await waitForTask(server, good.headers.get('Content-Location')!)).status).toBe(200);
  });

  test('a licence document becomes a Practitioner qualification pending review, with a verification Task for an admin', async () => {
    const practitioner = await create(server, { resourceType: 'Practitioner', name: [{ family: 'Okafor', given: ['Ngozi'] }] });
    const pdf = await PDFDocument.create();
    const page = pdf.addPage([612, 792]);
    const font = await pdf.embedFont(StandardFonts.TimesRoman);
    const lines = [
      'State Board of Medicine',
      'This is to certify that Ngozi Okafor',
      'is licensed to practise as a',
      'Doctor of Medicine',
      'License No: MD-204518',
      'Issued on 14 March 2019',
    ];
    lines.forEach((text, i) => page.drawText(text, { x: 90, y: 680 - i * 40, size: 18, font }));
    const form = new FormData();
    form.append('practitioner', `Practitioner/${practitioner.id}`);
    form.append('file', new Blob([await pdf.save()], { type: 'application/pdf' }), 'licence.pdf');
    const res = await server.request('DocumentReference/$upload', { method: 'POST', body: form });
    expect(res.status).toBe(202);
    const done = await waitForTask(server, res.headers.get('Content-Location')!);
    expect(done.status).toBe(200);
    const updated = (await server.request(`Practitioner/${practitioner.id}`)).body;
    expect(updated.qualification).toHaveLength(1);
    const [q] = updated.qualification;
    expect(q.code.text).toBe('Doctor of Medicine');
    expect(q.identifier).toEqual([{ value: 'MD-204518' }]);
    expect(q.period).toEqual({ start: '2019-03-14' });
    expect(q.issuer).toEqual({ display: 'State Board of Medicine' });
    expect(q.extension.find((e: { url: string }) => e.url.endsWith('/qualification-verification-status')).valueCode).toBe('pending-review');
    const tasks = await server.request(`Task?focus=Practitioner/${practitioner.id}&code=https://carelens.dev/fhir/CodeSystem/task-code|verify-credential`);
    expect(tasks.body.entry).toHaveLength(1);
    expect(tasks.body.entry[0].resource.status).toBe('requested');
  });

  test('an upload needs create access to Binary and DocumentReference, and a known patient', async () => {
    const narrow = await clientCredentialsToken(server.origin, OPERATOR.id, OPERATOR.secret, 'system/Patient.rs system/DocumentReference.c');
    const form = new FormData();
    form.append('patient', patientId);
    form.append('file', new Blob([readFileSync(join(docs.dir, firstOf('digital-pdf').document))], { type: 'application/pdf' }), 'r.pdf');
    const refused = await server.request('DocumentReference/$upload', { method: 'POST', body: form, headers: { Authorization: `Bearer ${narrow}` } });
    expect(refused.status).toBe(403);
    const unknown = await upload(server, 'no-such-patient', Buffer.from('%PDF-1.4'), 'application/pdf', 'x.pdf');
    expect(unknown.status).toBe(404);
  });

  describe('with a separate worker and every extracted value sent for review', () => {
    const worker = useServer(backend, { IN_PROCESS_JOBS: 'false', EXTRACTION_REVIEW_THRESHOLD: '1' });
    let workerPatient: string;
    beforeAll(async () => {
      workerPatient = (await create(worker, { resourceType: 'Patient', name: [{ family: 'Scan', given: ['Bo'] }] })).id;
    });

  test('a scanned report waits, durable, until a worker runs; OCR reads it; every uncertain value gets a review Task that clinicians approve or correct', async () => {
    const truth = firstOf('scan-image');
    const res = await upload(worker, workerPatient, readFileSync(join(docs.dir, truth.document)), 'image/jpeg', truth.document);
    expect(res.status).toBe(202);
    const statusUrl = res.headers.get('Content-Location')!;
    // No worker in this server: the job is a committed row, and the Task stays INGESTED.
    for (let i = 0; i < 2; i++) {
      const waiting = await worker.request(statusUrl);
      expect(waiting.status).toBe(202);
      expect(waiting.headers.get('X-Progress')).toBe('INGESTED');
      expect(waiting.headers.get('Retry-After')).toBe('2');
      await new Promise((r) => setTimeout(r, 300));
    }
    await worker.runJobs();
    const done = await worker.request(statusUrl);
    expect(done.status).toBe(200);
    const observations = (done.body as Bundle).entry!.map((e) => e.resource!).filter((r): r is Observation => r.resourceType === 'Observation');
    const { found, total } = matches(observations, truth);
    expect(found / total).toBeGreaterThanOrEqual(0.8);
    const task = (done.body as Bundle).entry![0].resource as Task;
    expect(task.output?.find((o) => o.type?.text === 'text-method')?.valueCode).toBe('tesseract');

    // OCR confidence is below 1, so with EXTRACTION_REVIEW_THRESHOLD=1 every value is flagged for review.
    const reviews = await worker.request(`Task?code=https://carelens.dev/fhir/CodeSystem/task-code|review-extracted-value&patient=${workerPatient}&status=requested&_count=200`);
    expect(reviews.body.entry).toHaveLength(observations.length);
    const flagged = await worker.request(`Observation?_tag=https://carelens.dev/fhir/CodeSystem/review|needs-review&patient=${workerPatient}&_summary=count`);
    expect(flagged.body.total).toBe(observations.length);

    const [first, second] = observations;
    const approve = await worker.request(`Observation/${first.id}/$review`, {
      method: 'POST',
      json: { resourceType: 'Parameters', parameter: [{ name: 'decision', valueCode: 'approve' }] },
    });
    expect(approve.status).toBe(200);
    expect(approve.body.status).toBe('final');
    expect(approve.body.meta.versionId).toBe('2');
    expect(approve.body.meta.tag ?? []).toEqual([]);
    const closed = await worker.request(`Task?focus=Observation/${first.id}`);
    expect(closed.body.entry[0].resource.status).toBe('completed');

    const correct = await worker.request(`Observation/${second.id}/$review`, {
      method: 'POST',
      json: {
        resourceType: 'Parameters',
        parameter: [
          { name: 'decision', valueCode: 'correct' },
          { name: 'value', valueQuantity: { value: 42.5 } },
          { name: 'reason', valueString: 'misread decimal point' },
        ],
      },
    });
    expect(correct.status).toBe(200);
    expect(correct.body.status).toBe('final');
    expect(correct.body.valueQuantity.value).toBe(42.5);
    expect(correct.body.valueQuantity.code).toBe(second.valueQuantity?.code);
    const provenance = await worker.request(`Provenance?target=Observation/${second.id}`);
    expect(provenance.body.entry).toHaveLength(1);
    expect(provenance.body.entry[0].resource.entity[0]).toEqual({ role: 'revision', what: { reference: `Observation/${second.id}/_history/1` } });
    expect(provenance.body.entry[0].resource.reason[0].text).toBe('misread decimal point');

    const twice = await worker.request(`Observation/${second.id}/$review`, {
      method: 'POST',
      json: { resourceType: 'Parameters', parameter: [{ name: 'decision', valueCode: 'approve' }] },
    });
    expect(twice.status).toBe(400);
  });
  });

  describe('with Amazon Textract configured (the real SDK against a local stub)', () => {
    const targets: string[] = [];
    let stub: Server;
    const textractLines = ['Chemistry', 'Glucose 98 mg/dL 70-99', 'Sodium 141 mmol/L 135-145', 'Page 1 of 1'];
    beforeAll(async () => {
      stub = createServer((req, res) => {
        targets.push(String(req.headers['x-amz-target']));
        req.resume();
        req.on('end', () => {
          // LINE and WORD blocks as Textract returns them: geometry as ratios of the page, confidence 0-100.
          const blocks = textractLines.flatMap((text, i) => {
            const words = text.split(' ').map((w, j) => ({
              Id: `w${i}-${j}`,
              BlockType: 'WORD',
              Text: w,
              Confidence: 99,
              Geometry: { BoundingBox: { Left: 0.1 + j * 0.15, Top: 0.1 + i * 0.05, Width: 0.12, Height: 0.02 } },
            }));
            return [
              { Id: `l${i}`, BlockType: 'LINE', Text: text, Confidence: 99, Geometry: { BoundingBox: { Left: 0.1, Top: 0.1 + i * 0.05, Width: 0.7, Height: 0.02 } }, Relationships: [{ Type: 'CHILD', Ids: words.map((w) => w.Id) }] },
              ...words,
            ];
          });
          res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify({ DocumentMetadata: { Pages: 1 }, Blocks: blocks }));
        });
      });
      await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
      process.env.AWS_ACCESS_KEY_ID = 'AKIDCARELENSTEST';
      process.env.AWS_SECRET_ACCESS_KEY = 'not-a-real-secret';
    });
    afterAll(() => new Promise<void>((resolve) => stub.close(() => resolve())));

    test('a scan is read by Textract instead of local OCR, and its values become Observations', async () => {
      const port = (stub.address() as AddressInfo).port;
      const server2 = await startServer(backend, { TEXTRACT_REGION: 'eu-west-1', TEXTRACT_ENDPOINT: `http://127.0.0.1:${port}` });
      try {
        const patient = await create(server2, { resourceType: 'Patient', name: [{ family: 'Cloud' }] });
        const png = Buffer.from(encodeGrayPng(new Uint8Array(1200 * 800).fill(255), 1200, 800, true));
        const res = await upload(server2, patient.id, png, 'image/png', 'scan.png');
        expect(res.status).toBe(202);
        const done = await waitForTask(server2, res.headers.get('Content-Location')!);
        expect(done.status).toBe(200);
        expect(targets).toEqual(['Textract.AnalyzeDocument']);
        const entries = (done.body as Bundle).entry!.map((e) => e.resource!);
        expect((entries[0] as Task).output?.find((o) => o.type?.text === 'text-method')?.valueCode).toBe('textract');
        const values = entries
          .filter((r): r is Observation => r.resourceType === 'Observation')
          .map((o) => [o.code?.coding?.[0]?.code, o.valueQuantity?.value, o.valueQuantity?.code])
          .sort();
        expect(values).toEqual([
          ['2345-7', 98, 'mg/dL'],
          ['2951-2', 141, 'mmol/L'],
        ]);
      } finally {
        await server2.close();
      }
    });
  });
});
