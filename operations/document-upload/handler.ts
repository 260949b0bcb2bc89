import type { Binary, Bundle, DocumentReference, Patient, Practitioner, Reference } from '@medplum/fhirtypes';
import { createHash, randomUUID } from 'node:crypto';
import { checkDocumentContent } from '../../src/documents/content-check.js';
import { sniffMediaType } from '../../src/documents/sniff.js';
import { badRequest, FhirError, issue } from '../../src/fhir/outcome.js';
import { type OperationContext, paramValue } from '../../src/fhir/operations.js';
import type { FhirResponse } from '../../src/fhir/types.js';

const LOINC = 'http://loinc.org';
const CREDENTIAL_TYPE = { coding: [{ system: 'https://carelens.dev/fhir/CodeSystem/document-type', code: 'credential', display: 'Practitioner credential (degree or licence)' }] };
const DOCUMENT_TYPES: Record<string, string> = {
  '11502-2': 'Laboratory report',
  '34133-9': 'Summary of episode note',
  '11506-3': 'Progress note',
  '18842-5': 'Discharge summary',
  '51851-4': 'Administrative note',
};

/** DocumentReference/$upload: a document in, Binary + DocumentReference stored, the pipeline started, 202 to poll. */
export async function handler(ctx: OperationContext): Promise<FhirResponse> {
  const file = ctx.params.parameter?.find((p) => p.name === 'file')?.valueAttachment;
  // An empty file comes as an Attachment of size 0 without data, and is refused below for what it is.
  if (!file || (file.data === undefined && file.size !== 0)) {
    throw badRequest('$upload needs a "file" parameter: an Attachment with data (or a form file field named "file")', 'file');
  }
  const subject = subjectReference(paramValue(ctx.params, 'patient'), paramValue(ctx.params, 'practitioner'));
  const isCredential = subject.reference!.startsWith('Practitioner/');
  const typeCode = String(paramValue(ctx.params, 'type') ?? (isCredential ? 'credential' : '11502-2'));
  const type = isCredential ? CREDENTIAL_TYPE : DOCUMENT_TYPES[typeCode] && { coding: [{ system: LOINC, code: typeCode, display: DOCUMENT_TYPES[typeCode] }] };
  if (!type) {
    throw badRequest(`Unknown document type "${typeCode}": use one of ${Object.keys(DOCUMENT_TYPES).join(', ')}`, 'type');
  }
  // The subject must exist and be within the caller's reach (a 404 or 403 otherwise).
  await ctx.router.handle({ ...ctx.request, method: 'GET', path: subject.reference!, query: [], body: undefined }, ctx.scope);
  const bytes = Buffer.from(file.data ?? '', 'base64');
  // The stored Binary's full check (size, readable PDF) runs in the write hook; here only the real type is needed.
  const mediaType = sniffMediaType(bytes);
  if (!mediaType) {
    await checkDocumentContent(bytes, file.contentType, ctx.platform.documents.maxBytes, 'file'); // the precise refusal, if there is one
    throw new FhirError(415, [issue('not-supported', 'file: only PDF, PNG and JPEG documents can be uploaded')]);
  }
  const binaryUrl = `urn:uuid:${randomUUID()}`;
  const documentUrl = `urn:uuid:${randomUUID()}`;
  const author = ctx.request.access?.context.fhirUser;
  const description = paramValue(ctx.params, 'description');
  const binary: Binary = { resourceType: 'Binary', contentType: mediaType, securityContext: subject, data: file.data };
  const document: DocumentReference = {
    resourceType: 'DocumentReference',
    status: 'current',
    type,
    subject,
    date: new Date().toISOString(),
    ...(author ? { author: [{ reference: author }] } : {}),
    ...(typeof description === 'string' ? { description } : {}),
    content: [
      {
        attachment: {
          contentType: mediaType,
          url: binaryUrl,
          size: bytes.length,
          hash: createHash('sha1').update(bytes).digest('base64'),
          ...(file.title ? { title: file.title } : {}),
        },
      },
    ],
  };
  const transaction: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { fullUrl: binaryUrl, resource: binary, request: { method: 'POST', url: 'Binary' } },
      { fullUrl: documentUrl, resource: document, request: { method: 'POST', url: 'DocumentReference' } },
    ],
  };
  // Through the router with the caller's own access: the same checks as if they had sent the transaction.
  const result = await ctx.router.handle({ ...ctx.request, method: 'POST', path: '', query: [], body: transaction, preferReturn: 'minimal' }, ctx.scope);
  const accepted = await ctx.platform.documents.asyncResponse(result, ctx.router.options.baseUrl);
  if (accepted.status !== 202) {
    throw new Error('the uploaded document has no pipeline Task'); // cannot happen: the write hook creates it with the document
  }
  return accepted;
}

/** The patient a clinical document is about, or the practitioner whose credential it is: exactly one. */
function subjectReference(patient: unknown, practitioner: unknown): Reference<Patient | Practitioner> {
  if ((patient === undefined) === (practitioner === undefined)) {
    throw badRequest('$upload needs exactly one of "patient" (Patient/[id] or [id]) or "practitioner" (for a credential document)', 'patient');
  }
  const type = patient !== undefined ? 'Patient' : 'Practitioner';
  const value = patient ?? practitioner;
  const match = typeof value === 'string' ? value.match(new RegExp(`^(?:${type}/)?([A-Za-z0-9\\-.]{1,64})$`)) : null;
  if (!match) {
    throw badRequest(`"${type.toLowerCase()}" must be ${type}/[id] or [id]`, type.toLowerCase());
  }
  return { reference: `${type}/${match[1]}` };
}
