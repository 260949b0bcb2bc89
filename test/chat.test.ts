import type { Communication, DocumentReference, Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { buildDemoBundle, DEMO_PATIENT_IDS, PHYSICIAN_ID } from '../src/demo/demo-bundle.js';
import { type BedrockStub, startBedrockStub, type StubReply } from './bedrock-stub.js';
import { BACKENDS, clientCredentialsToken, create, type TestServer, useServer } from './harness.js';

/**
 * Patient and doctor chat through the HTTP API: grounded, cited answers from the patient's own
 * record, isolation between patients, the safety layer, conversations as Communications, Server-Sent
 * Events, and the Bedrock path with its hallucination guard.
 */

type Part = ParametersParameter;
const part = (parts: Part[] | undefined, name: string): Part | undefined => parts?.find((p) => p.name === name);
const parts = (parts: Part[] | undefined, name: string): Part[] => parts?.filter((p) => p.name === name) ?? [];

const [ROSA, THOMAS, AIKO] = DEMO_PATIENT_IDS;
const CONVERSATION = 'https://carelens.dev/fhir/conversation';

interface Answer {
  status: number;
  body: Parameters;
  text: string;
  answer: string;
  safety: string;
  citations: { n: number; source: string; title: string; date?: string; chunk: string }[];
}

async function chat(server: TestServer, path: string, params: Part[]): Promise<Answer> {
  const res = await server.request(path, { method: 'POST', json: { resourceType: 'Parameters', parameter: params } });
  const body = res.body as Parameters;
  return {
    status: res.status,
    body,
    text: res.text,
    answer: part(body?.parameter, 'answer')?.valueString ?? '',
    safety: part(body?.parameter, 'safety')?.valueCode ?? '',
    citations: parts(body?.parameter, 'citation').map((c) => ({
      n: part(c.part, 'n')!.valueInteger!,
      source: part(c.part, 'source')!.valueReference!.reference!,
      title: part(c.part, 'title')!.valueString!,
      date: part(c.part, 'date')?.valueString,
      chunk: part(c.part, 'chunk')!.valueString!,
    })),
  };
}

function changes(res: { body: Parameters }): { source: string; version?: string }[] {
  return parts(res.body.parameter, 'change').map((c) => ({ source: part(c.part, 'source')!.valueReference!.reference!, ...(part(c.part, 'version') ? { version: part(c.part, 'version')!.valueString } : {}) }));
}

/** The events of a text/event-stream body: one `event:` and one `data:` (JSON) line each. */
function serverSentEvents(body: string): { event: string; data: any }[] {
  return body
    .split('\n\n')
    .filter(Boolean)
    .map((block) => ({ event: /^event: (.*)$/m.exec(block)![1], data: JSON.parse(/^data: (.*)$/m.exec(block)![1]) }));
}

const ask = (server: TestServer, patientId: string, message: string, extra: Part[] = []): Promise<Answer> =>
  chat(server, `Patient/${patientId}/$chat`, [{ name: 'message', valueString: message }, ...extra]);

const CRITICAL = [
  'I have severe chest pain right now',
  'my chest feels tight and the pain goes down my arm',
  'I suddenly lost my vision in one eye',
  'my face is drooping and my speech is slurred',
  "I can't breathe properly",
  'I am struggling to breathe since this morning',
  "I've been having suicidal thoughts",
  'I want to end my life',
  'I think I am having a stroke',
  'I am coughing up blood',
  'my throat is swelling after the new tablets',
];
const NEGATED = ['I have no chest pain, what was my last blood pressure?', 'No shortness of breath. When was my last visit?', 'I denied any suicidal thoughts at my check-up; what was my last glucose?'];
const DIAGNOSTIC = ['Do I have cancer?', 'Am I diabetic?', 'Is this lump cancer?', "What's wrong with me?", 'Can you diagnose my rash?'];
const TREATMENT = ['Should I stop my tablets?', 'Can I double my metformin dose?', 'How many tablets of metformin should I take?', 'What medicine should I take for my headache?', 'Is it safe to stop taking lisinopril?'];

describe.each(BACKENDS)('patient and doctor $chat (%s)', (backend) => {
  const server = useServer(backend);

  beforeAll(async () => {
    expect((await server.request('', { method: 'POST', json: buildDemoBundle() })).status).toBe(200);
  });

  test('a patient asks for a result: the latest value, its date and range, cited to the Observation version', async () => {
    const res = await ask(server, ROSA, 'What was my last HbA1c?');
    expect(res.status).toBe(200);
    expect(res.safety).toBe('ok');
    expect(res.answer).toMatch(/^Your Hemoglobin A1c\/Hemoglobin\.total in Blood on 2 Dec 2025 was 7\.6%, above the normal range of 4–5\.6%\. \[1\]/);
    // Plain language: the term is explained.
    expect(res.answer).toMatch(/HbA1c is a blood test that shows your average blood sugar/);
    expect(res.answer).not.toMatch(/Haemoglobin is the protein/); // "A1c/Hemoglobin.total" is not haemoglobin
    expect(res.citations).toHaveLength(1);
    expect(res.citations[0].source).toMatch(/^Observation\/[^/]+\/_history\/1$/);
    const cited = await server.request(res.citations[0].source);
    expect(cited.body.valueQuantity.value).toBe(7.6);
    expect(cited.body.subject.reference).toBe(`Patient/${ROSA}`);
    expect(res.citations[0].chunk).toBe(`${res.citations[0].source.replace('/_history/', '@')}#0`);
    expect(part(res.body.parameter, 'generator')?.valueString).toBe('extractive');
    expect(part(res.body.parameter, 'requiresDoctorConsultation')?.valueBoolean).toBe(false);
  });

  test('history, lists, visits and synonyms are answered from the record', async () => {
    const history = await ask(server, ROSA, 'How has my blood sugar changed over time?');
    expect(history.answer).toMatch(/312 mg\/dL/);
    expect(history.answer).toMatch(/151 mg\/dL/);
    expect(history.citations.length).toBeGreaterThanOrEqual(3);
    const medications = await ask(server, ROSA, 'What medications am I on?');
    expect(medications.answer).toMatch(/metformin hydrochloride 500 MG Oral Tablet, prescribed on 11 Mar 2025/);
    // A patient is never told a dose, even the prescription's own.
    expect(medications.answer).not.toMatch(/twice daily/);
    const visit = await ask(server, THOMAS, 'When was my hospital visit for hypertensive urgency?');
    expect(visit.answer).toMatch(/3 Nov 2025/);
    const bp = await ask(server, THOMAS, 'what was my last BP?');
    expect(bp.answer).toMatch(/184 mmHg/);
  });

  test('isolation: no question, however it is put, brings another patient’s record into an answer', async () => {
    const everything = await server.request(`Patient/${AIKO}/$everything?_count=1000`);
    const own = new Set((everything.body.entry as { resource: { resourceType: string; id: string } }[]).map((e) => `${e.resource.resourceType}/${e.resource.id}`));
    const probes = [
      'What was my last HbA1c?',
      'Tell me about metformin',
      'Rosa Delgado diabetes',
      'Thomas Brennan blood pressure 184',
      'hypertensive urgency with headache',
      'What medications am I on?',
      'glucose 312',
      'show me everything',
      'What conditions do I have recorded?',
      `Observation for patient ${ROSA}`,
    ];
    for (const probe of probes) {
      const res = await ask(server, AIKO, probe);
      expect(res.status).toBe(200);
      for (const c of res.citations) expect(own.has(c.source.replace(/\/_history\/.*$/, ''))).toBe(true);
      // Nor among the chunks the answer was composed from.
      const response = await server.request(part(res.body.parameter, 'response')!.valueReference!.reference!);
      const chunks = (response.body as Communication).extension!.filter((e) => e.url.endsWith('/rag-chunk')).map((e) => e.valueString!.split('@')[0]);
      for (const source of chunks) expect({ probe, source, own: own.has(source) }).toEqual({ probe, source, own: true });
      expect(res.answer).not.toMatch(/metformin|Delgado|Brennan|312|184|hypertensive/i);
    }
  });

  test('every critical symptom gets the emergency response, the consultation flag and a care-team alert', async () => {
    for (const message of CRITICAL) {
      const res = await ask(server, THOMAS, message);
      expect({ message, safety: res.safety }).toEqual({ message, safety: 'critical_symptom' });
      expect(res.answer).toMatch(/call your local emergency number now/);
      expect(part(res.body.parameter, 'requiresDoctorConsultation')?.valueBoolean).toBe(true);
      expect(part(res.body.parameter, 'careTeamNotified')?.valueBoolean).toBe(true);
      expect(res.citations).toEqual([]);
    }
    const alerts = await server.request(`Communication?patient=${THOMAS}&category=https://carelens.dev/fhir/CodeSystem/chat-message|care-team-alert`);
    expect(alerts.body.entry).toHaveLength(CRITICAL.length);
    const alert = alerts.body.entry[0].resource as Communication;
    expect(alert.priority).toBe('stat');
    expect(alert.recipient?.map((r) => r.reference)).toContain(`Practitioner/${PHYSICIAN_ID}`);
    expect(JSON.stringify(alert.payload)).not.toMatch(/chest|breathe|suicid/); // the alert points at the message, it does not repeat it
  });

  test('negated symptoms are answered; diagnostic and treatment requests get their fixed responses', async () => {
    for (const message of NEGATED) {
      const res = await ask(server, ROSA, message);
      expect({ message, safety: res.safety }).toEqual({ message, safety: 'ok' });
      expect(res.citations.length).toBeGreaterThan(0);
    }
    for (const message of DIAGNOSTIC) {
      const res = await ask(server, ROSA, message);
      expect({ message, safety: res.safety }).toEqual({ message, safety: 'diagnostic_request' });
      expect(res.answer).toMatch(/only a doctor who knows you/);
      expect(part(res.body.parameter, 'requiresDoctorConsultation')?.valueBoolean).toBe(true);
      expect(part(res.body.parameter, 'careTeamNotified')).toBeUndefined();
    }
    for (const message of TREATMENT) {
      const res = await ask(server, ROSA, message);
      expect({ message, safety: res.safety }).toEqual({ message, safety: 'treatment_request' });
      expect(res.answer).toMatch(/can't advise you on starting, stopping or changing/);
    }
    // A question about the record is not a request for a diagnosis.
    expect((await ask(server, ROSA, 'Do I have any allergies recorded?')).safety).not.toBe('diagnostic_request');
  });

  test('a question the record cannot answer says so, with nothing cited', async () => {
    const res = await ask(server, AIKO, 'What was my last PSA result?');
    expect(res.safety).toBe('no_information');
    expect(res.answer).toMatch(/couldn't find anything about that in your record/);
    expect(res.citations).toEqual([]);
  });

  test('conversations persist as Communications; a thread continues and a follow-up uses it; threads do not cross patients', async () => {
    const first = await ask(server, ROSA, 'What was my last glucose?');
    const conversationId = part(first.body.parameter, 'conversationId')!.valueString!;
    expect(first.answer).toMatch(/151 mg\/dL/);
    const second = await ask(server, ROSA, 'and the one before that?', [{ name: 'conversationId', valueString: conversationId }]);
    expect(part(second.body.parameter, 'conversationId')?.valueString).toBe(conversationId);
    expect(second.citations[0].title).toMatch(/Glucose/);
    expect(second.answer).toMatch(/312 mg\/dL/); // the one before 151
    const thread = await server.request(`Communication?identifier=${CONVERSATION}|${conversationId}&_sort=sent`);
    const messages = (thread.body.entry as { resource: Communication }[]).map((e) => e.resource);
    expect(messages).toHaveLength(4);
    const answer = messages.find((m) => m.id === part(first.body.parameter, 'response')!.valueReference!.reference!.split('/')[1])!;
    expect(answer.subject?.reference).toBe(`Patient/${ROSA}`);
    expect(answer.inResponseTo?.[0].reference).toBe(part(first.body.parameter, 'question')!.valueReference!.reference);
    expect(answer.payload?.[0].contentString).toBe(first.answer);
    expect(answer.payload?.slice(1).map((p) => p.contentReference?.reference)).toEqual(first.citations.map((c) => c.source));
    const chunkIds = answer.extension?.filter((e) => e.url.endsWith('/rag-chunk')).map((e) => e.valueString);
    expect(chunkIds).toEqual(expect.arrayContaining(first.citations.map((c) => c.chunk)));
    // Another patient cannot continue Rosa's thread.
    const crossed = await ask(server, THOMAS, 'What was my last glucose?', [{ name: 'conversationId', valueString: conversationId }]);
    expect(crossed.status).toBe(400);
    expect(crossed.text).toMatch(/belongs to another patient or participant/);
  });

  test('doctor chat: one thread per doctor and patient, evidence with citations, a patient summary', async () => {
    const doctorAsk = (patientId: string, message: string, extra: Part[] = []): Promise<Answer> =>
      chat(server, `Practitioner/${PHYSICIAN_ID}/$chat`, [{ name: 'message', valueString: message }, { name: 'patient', valueReference: { reference: `Patient/${patientId}` } }, ...extra]);
    const a = await doctorAsk(ROSA, 'HbA1c trend', [{ name: 'additionalContext', valueString: 'Considering treatment intensification' }]);
    expect(a.status).toBe(200);
    expect(a.answer).toMatch(/Hemoglobin A1c\/Hemoglobin\.total in Blood, newest first:/);
    expect(a.answer).toMatch(/2 Dec 2025: 7\.6% HIGH/);
    const summary = part(a.body.parameter, 'patientSummary')!.part;
    expect(part(summary, 'gender')?.valueCode).toBe('female');
    expect(part(summary, 'age')?.valueInteger).toBeGreaterThanOrEqual(58);
    expect(part(summary, 'lastConsultation')?.valueString).toMatch(/2 Dec 2025/);
    expect(parts(summary, 'activeCondition').map((c) => c.valueString)).toContain('Diabetes mellitus type 2');
    // Diagnostic questions are a doctor's job: no redirect.
    const b = await doctorAsk(ROSA, 'Is the diabetes controlled? Do I need to worry about her kidneys (creatinine)?');
    expect(b.safety).toBe('ok');
    const c = await doctorAsk(THOMAS, 'blood pressure');
    const threads = [a, b, c].map((x) => part(x.body.parameter, 'conversationId')!.valueString);
    expect(threads[0]).toBe(threads[1]);
    expect(threads[2]).not.toBe(threads[0]);
    const question = await server.request(part(a.body.parameter, 'question')!.valueReference!.reference!);
    expect(question.body.sender.reference).toBe(`Practitioner/${PHYSICIAN_ID}`);
    expect(question.body.payload[1].contentString).toBe('Additional context: Considering treatment intensification');
    const missing = await chat(server, `Practitioner/${PHYSICIAN_ID}/$chat`, [{ name: 'message', valueString: 'hello' }]);
    expect(missing.status).toBe(400);
    expect(missing.text).toMatch(/patient is required/);
  });

  test('documents: a clinical note is chunked by section and quoted with its title and date', async () => {
    const note = [
      '# Chief Complaint',
      'Follow-up of knee pain after a fall while hiking.',
      '',
      '# Assessment and Plan',
      'Mild medial collateral ligament sprain of the left knee. Physiotherapy twice weekly for six weeks; review in clinic afterwards.',
    ].join('\n');
    const doc = await create<DocumentReference>(server, {
      resourceType: 'DocumentReference',
      status: 'current',
      type: { text: 'Orthopaedic clinic letter' },
      category: [{ coding: [{ system: 'http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category', code: 'clinical-note' }] }],
      subject: { reference: `Patient/${AIKO}` },
      date: '2026-01-20T10:00:00Z',
      content: [{ attachment: { contentType: 'text/plain', data: Buffer.from(note).toString('base64') } }],
    });
    const refreshed = await server.request(`Patient/${AIKO}/$rag-refresh`, { method: 'POST', json: { resourceType: 'Parameters' } });
    expect(part(refreshed.body.parameter, 'reason')?.valueCode).toBe('manual');
    const res = await ask(server, AIKO, 'What did the clinic say about physiotherapy for my knee?');
    expect(res.answer).toMatch(/Your Orthopaedic clinic letter \(Assessment and Plan\), 20 Jan 2026 says: ".*Physiotherapy twice weekly for six weeks/);
    expect(res.citations[0].source).toBe(`DocumentReference/${doc.id}/_history/1`);
  });

  test('a PDF letter is read by the document pipeline, indexed once its text is extracted, and quoted', async () => {
    const pdf = await PDFDocument.create();
    const page = pdf.addPage([595, 842]);
    const font = await pdf.embedFont(StandardFonts.Helvetica);
    ['Cardiology clinic letter', '', 'IMPRESSION:', 'Mild mitral regurgitation on the echocardiogram, no change since last year.', '', 'PLAN:', 'Repeat echocardiogram in twelve months.'].forEach((line, i) =>
      page.drawText(line, { x: 50, y: 780 - i * 18, size: 11, font }),
    );
    const doc = await create<DocumentReference>(server, {
      resourceType: 'DocumentReference',
      status: 'current',
      description: 'Cardiology clinic letter',
      subject: { reference: `Patient/${THOMAS}` },
      date: '2026-02-03T09:00:00Z',
      content: [{ attachment: { contentType: 'application/pdf', data: Buffer.from(await pdf.save()).toString('base64') } }],
    });
    const before = await server.request(`Patient/${THOMAS}/$rag-refresh`, { method: 'POST', json: { resourceType: 'Parameters' } });
    expect(changes(before)).toContainEqual({ source: `DocumentReference/${doc.id}`, version: '1' });
    // The pipeline extracts the text: wait for its Task as a client would.
    const task = (await server.request(`Task?focus=DocumentReference/${doc.id}`)).body.entry[0].resource;
    for (let i = 0; i < 200 && (await server.request(`Task/${task.id}/$status`)).status === 202; i++) await new Promise((r) => setTimeout(r, 50));
    const after = await server.request(`Patient/${THOMAS}/$rag-refresh`, { method: 'POST', json: { resourceType: 'Parameters', parameter: [{ name: 'reason', valueCode: 'new_report' }] } });
    expect(changes(after)).toEqual([{ source: `DocumentReference/${doc.id}`, version: '1+text1' }]);
    const res = await ask(server, THOMAS, 'What was the plan for my echocardiogram?');
    expect(res.answer).toMatch(/^Your Cardiology clinic letter \(Plan\), 3 Feb 2026 says: "Repeat echocardiogram in twelve months\." \[1\]/);
    expect(res.citations[0].source).toBe(`DocumentReference/${doc.id}/_history/1`);
  });

  test('a DiagnosticReport is indexed by its conclusion and its presented form', async () => {
    const report = await create(server, {
      resourceType: 'DiagnosticReport',
      status: 'final',
      code: { text: 'Chest X-ray' },
      subject: { reference: `Patient/${AIKO}` },
      effectiveDateTime: '2026-03-01T11:00:00Z',
      conclusion: 'No focal consolidation; heart size normal.',
      presentedForm: [{ contentType: 'text/plain', data: Buffer.from('FINDINGS:\nLungs are clear. No pleural effusion.').toString('base64') }],
    });
    const conclusion = await ask(server, AIKO, 'What did my chest x-ray show?');
    expect(conclusion.answer).toMatch(/^Your Chest X-ray report is dated 1 Mar 2026; its conclusion reads: "No focal consolidation; heart size normal\."\. \[1\]/);
    const findings = await ask(server, AIKO, 'Was there any pleural effusion on the x-ray?');
    expect(findings.answer).toMatch(/\(Findings\), 1 Mar 2026 says: "Lungs are clear\. No pleural effusion\."/);
    expect(new Set(findings.citations.map((c) => c.source))).toEqual(new Set([`DiagnosticReport/${report.id}/_history/1`]));
  });

  test('Server-Sent Events: meta, one delta per sentence with its citation markers, then done', async () => {
    const res = await fetch(`${server.base}/Patient/${ROSA}/$chat`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${server.token}`, Accept: 'text/event-stream', 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'message', valueString: 'What was my last haemoglobin?' }] }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = serverSentEvents(await res.text());
    expect(events.map((e) => e.event)).toEqual(['meta', 'delta', 'delta', 'done']);
    expect(events[1].data.text).toMatch(/^Your Hemoglobin \[Mass\/volume\] in Blood on 11 Mar 2025 was 13\.1 g\/dL, within the normal range of 12–15\.5 g\/dL\. \[1\]$/);
    expect(events[2].data.text).toMatch(/^Haemoglobin is the protein in red blood cells/);
    expect(events[3].data.resourceType).toBe('Parameters');
    expect(part(events[3].data.parameter, 'answer')?.valueString).toBe(events.slice(1, 3).map((e) => e.data.text).join(' '));
  });

  test('bad input and access: missing message 400, a clinician user on the patient chat 403, a client without Communication write 403', async () => {
    const none = await ask(server, ROSA, '');
    expect(none.status).toBe(400);
    const long = await ask(server, ROSA, 'x'.repeat(2001));
    expect(long.status).toBe(400);
    const context = await ask(server, ROSA, 'hi', [{ name: 'additionalContext', valueString: 'x' }]);
    expect(context.status).toBe(400);
    const badThread = await ask(server, ROSA, 'hi', [{ name: 'conversationId', valueString: 'not a valid id!' }]);
    expect(badThread.status).toBe(400);
    expect(badThread.text).toMatch(/conversationId must be 1-64 characters/);
    expect((await server.request(`Patient/${ROSA}/$chat?message=hi`)).status).toBe(405);
    const unknown = await chat(server, `Practitioner/${PHYSICIAN_ID}/$chat`, [{ name: 'message', valueString: 'hi' }, { name: 'patient', valueReference: { reference: 'Patient/nobody' } }]);
    expect(unknown.status).toBe(404);
    const registered = await server.request(`${server.origin}/admin/clients`, {
      method: 'POST',
      json: { client_id: 'read-only-portal', client_name: 'Read-only portal', grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'system/*.rs' },
    });
    expect(registered.status).toBe(201);
    const token = await clientCredentialsToken(server.origin, 'read-only-portal', registered.body.client_secret, 'system/*.rs');
    const res = await server.request(`Patient/${ROSA}/$chat`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}` },
      json: { resourceType: 'Parameters', parameter: [{ name: 'message', valueString: 'What was my last HbA1c?' }] },
    });
    expect(res.status).toBe(403);
  });
});

describe.each(BACKENDS)('$chat with Amazon Bedrock (%s)', (backend) => {
  let stub: BedrockStub;
  let reply: StubReply = '';
  const env: Record<string, string> = {};
  beforeAll(async () => {
    stub = await startBedrockStub({ reply: () => reply, chunkSize: 7 });
    Object.assign(env, {
      BEDROCK_REGION: 'us-east-1',
      BEDROCK_ENDPOINT: stub.endpoint,
      BEDROCK_CHAT_MODEL: 'anthropic.claude-3-5-sonnet-20240620-v1:0',
      BEDROCK_EMBEDDING_MODEL: 'amazon.titan-embed-text-v2:0',
      BEDROCK_EMBEDDING_DIMENSIONS: '256',
    });
  });
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  beforeAll(() => {
    // The SDK's default credential chain reads the process environment, as in production.
    process.env.AWS_ACCESS_KEY_ID = 'AKIDTEST';
    process.env.AWS_SECRET_ACCESS_KEY = 'test-secret';
  });
  afterAll(async () => {
    await stub.close();
    for (const [key, value] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });
  const server = useServer(backend, env);

  beforeAll(async () => {
    expect((await server.request('', { method: 'POST', json: buildDemoBundle() })).status).toBe(200);
  });

  test('Claude answers from the numbered chunks; unsupported, uncited-and-unsupportable, diagnostic and dosing sentences never reach the patient', async () => {
    reply = [
      'Your most recent HbA1c was 7.6% on 2 Dec 2025 [1].',
      'Before that it was 8.4% on 11 Mar 2025.',
      'Your HbA1c was 6.1% in 2019 [1].',
      'This suggests you have poorly controlled diabetes [1].',
      'You should take 1000 mg of metformin twice a day [2].',
    ].join(' ');
    const res = await ask(server, ROSA, 'What is my HbA1c?');
    expect(res.status).toBe(200);
    expect(part(res.body.parameter, 'generator')?.valueString).toBe('bedrock:anthropic.claude-3-5-sonnet-20240620-v1:0');
    expect(res.answer).toMatch(/^Your most recent HbA1c was 7\.6% on 2 Dec 2025\. \[1\] Before that it was 8\.4% on 11 Mar 2025\. \[2\]/);
    expect(res.answer).not.toMatch(/6\.1%|suggests|1000 mg/);
    expect(part(res.body.parameter, 'removedSentences')?.valueInteger).toBe(3);
    const cited = await Promise.all(res.citations.map((c) => server.request(c.source)));
    expect(cited.map((c) => c.body.valueQuantity.value).sort()).toEqual([7.6, 8.4]);
    // The model saw the patient's chunks, numbered, and the question; embeddings were asked for the chunks and the question.
    const call = stub.requests.filter((r) => r.streaming).at(-1)!;
    expect(call.body.system).toMatch(/\[1\] Hemoglobin A1c\/Hemoglobin\.total in Blood/);
    expect(call.body.system).not.toMatch(/Brennan|lisinopril/);
    expect((call.body.messages as unknown[]).at(-1)).toEqual({ role: 'user', content: 'What is my HbA1c?' });
    expect(stub.requests.some((r) => r.modelId === 'amazon.titan-embed-text-v2:0')).toBe(true);
  });

  test('the doctor path streams guarded sentences as Server-Sent Events', async () => {
    reply = 'Latest systolic pressure 184 mmHg on 3 Nov 2025 [1]. Amlodipine 10 mg was started in 2024 [1].';
    const res = await fetch(`${server.base}/Practitioner/${PHYSICIAN_ID}/$chat`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${server.token}`, Accept: 'text/event-stream', 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'message', valueString: 'blood pressure control' }, { name: 'patient', valueReference: { reference: `Patient/${THOMAS}` } }] }),
    });
    const events = serverSentEvents(await res.text());
    expect(events.map((e) => e.event)).toEqual(['meta', 'delta', 'done']);
    expect(events[1].data.text).toMatch(/^Latest systolic pressure 184 mmHg on 3 Nov 2025\. \[1\]$/);
    expect(part(events[2].data.parameter, 'removedSentences')?.valueInteger).toBe(1);
  });

  test('a Bedrock failure while streaming ends the stream with an error event, nothing saved', async () => {
    reply = { error: 'ModelStreamErrorException', partial: 'Your last weight' };
    const before = await server.request(`Communication?patient=${AIKO}&_summary=count`);
    const res = await fetch(`${server.base}/Patient/${AIKO}/$chat`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${server.token}`, Accept: 'text/event-stream', 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'message', valueString: 'What was my last body weight?' }] }),
    });
    const events = serverSentEvents(await res.text());
    expect(events.map((e) => e.event)).toEqual(['meta', 'error']);
    expect(events[1].data.issue[0].diagnostics).toMatch(/Bedrock InvokeModelWithResponseStream failed: ModelStreamErrorException/);
    expect((await server.request(`Communication?patient=${AIKO}&_summary=count`)).body.total).toBe(before.body.total);
  });

  test('a Bedrock failure is a precise error, nothing saved', async () => {
    const before = await server.request(`Communication?patient=${AIKO}&_summary=count`);
    reply = { error: 'ThrottlingException', status: 429 };
    const res = await ask(server, AIKO, 'What was my last weight?');
    expect(res.status).toBe(502);
    expect(res.text).toMatch(/Bedrock InvokeModelWithResponseStream failed: ThrottlingException/);
    const after = await server.request(`Communication?patient=${AIKO}&_summary=count`);
    expect(after.body.total).toBe(before.body.total);
  });
});
