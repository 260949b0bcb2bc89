import type { Attachment, Binary, DocumentReference, Resource } from '@medplum/fhirtypes';
import { FhirError, issue } from '../fhir/outcome.js';
import { DocumentRejected } from './document-text.js';
import { openPdf } from './pdf-text.js';
import { type DocumentMediaType, sniff } from './sniff.js';

export const DOCUMENT_MEDIA_TYPES: readonly string[] = ['application/pdf', 'image/png', 'image/jpeg'];

/**
 * Checks the bytes of every document written (a Binary, or a DocumentReference's inline
 * attachment) before anything is stored: the type comes from the magic bytes, not from what the
 * client declared; executables are refused whatever they claim to be; a declared PDF, PNG or JPEG
 * must really be one; PDFs must open (not corrupt, not password-protected); size is capped.
 * Returns the real media type of a document, undefined for other (non-document) content.
 */
export async function checkDocumentContent(bytes: Uint8Array, declared: string | undefined, maxBytes: number, where: string): Promise<DocumentMediaType | undefined> {
  if (bytes.length > maxBytes) {
    throw new FhirError(413, [issue('too-costly', `${where}: the document is ${bytes.length} bytes; the limit is ${maxBytes} (DOCUMENT_MAX_BYTES)`)]);
  }
  const declaredType = declared?.split(';')[0].trim().toLowerCase();
  const claimsDocument = declaredType !== undefined && DOCUMENT_MEDIA_TYPES.includes(declaredType);
  const found = sniff(bytes);
  if (found.kind === 'rejected') {
    if (found.format === 'empty file') {
      if (claimsDocument) {
        throw new FhirError(400, [issue('required', `${where}: the document is empty (0 bytes)`)]);
      }
      return undefined;
    }
    if (claimsDocument || found.format !== 'ZIP archive (also DOCX/XLSX/JAR/APK)') {
      throw new FhirError(415, [
        issue('not-supported', `${where}: the content is a ${found.format}${claimsDocument ? `, not the ${declaredType} it is declared as` : ''}; it is not accepted`),
      ]);
    }
    return undefined;
  }
  if (found.kind === 'unknown') {
    if (claimsDocument) {
      throw new FhirError(415, [issue('not-supported', `${where}: declared as ${declaredType} but the content is not a PDF, PNG or JPEG file`)]);
    }
    return undefined;
  }
  if (found.mediaType === 'application/pdf') {
    await assertPdfReadable(bytes, where);
  }
  return found.mediaType;
}

async function assertPdfReadable(bytes: Uint8Array, where: string): Promise<void> {
  try {
    const pdf = await openPdf(new Uint8Array(bytes)); // pdfjs refuses Node Buffers
    try {
      if (pdf.numPages < 1) {
        throw new DocumentRejected('corrupt', 'PDF has no pages');
      }
      await pdf.getPage(1);
    } finally {
      await pdf.destroy();
    }
  } catch (err) {
    if (err instanceof DocumentRejected) {
      throw new FhirError(422, [issue(err.reason === 'encrypted' ? 'security' : 'invalid', `${where}: ${err.message}`)]);
    }
    throw new FhirError(422, [issue('invalid', `${where}: the PDF cannot be read (${err instanceof Error ? err.message : String(err)})`)]);
  }
}

/** The document bytes a resource carries inline, with where they are (for messages). */
export function inlineDocuments(resource: Resource): { attachment: Attachment | Binary; bytes: Buffer; where: string }[] {
  if (resource.resourceType === 'Binary') {
    // A Binary's data is its content: without data it is empty, which a declared document may not be.
    return [{ attachment: resource, bytes: Buffer.from(resource.data ?? '', 'base64'), where: 'Binary.data' }];
  }
  if (resource.resourceType === 'DocumentReference') {
    return ((resource as DocumentReference).content ?? []).flatMap((c, i) =>
      c.attachment?.data !== undefined
        ? [{ attachment: c.attachment, bytes: Buffer.from(c.attachment.data, 'base64'), where: `DocumentReference.content[${i}].attachment.data` }]
        : [],
    );
  }
  return [];
}
