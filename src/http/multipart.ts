import type { Parameters, ParametersParameter } from '@medplum/fhirtypes';
import busboy from 'busboy';
import { Readable } from 'node:stream';
import { badRequest } from '../fhir/outcome.js';

/**
 * A browser form upload (multipart/form-data) as the Parameters resource an operation takes: each
 * file part becomes a valueAttachment (content type as sent, title from the file name, data in
 * base64), each text field a valueString. Operations then see one input shape, form or JSON.
 */
export async function parseMultipart(body: Buffer, contentTypeHeader: string): Promise<Parameters> {
  const parameter: ParametersParameter[] = [];
  let parser: busboy.Busboy;
  try {
    parser = busboy({ headers: { 'content-type': contentTypeHeader }, limits: { fields: 50, files: 5, fieldSize: 64 * 1024 } });
  } catch (err) {
    throw badRequest(`The multipart/form-data body cannot be read: ${(err as Error).message}`);
  }
  const files: Promise<void>[] = [];
  await new Promise<void>((resolve, reject) => {
    parser.on('field', (name, value) => parameter.push({ name, valueString: value }));
    parser.on('file', (name, stream, info) => {
      const chunks: Buffer[] = [];
      files.push(
        new Promise((done) => {
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.on('end', () => {
            const bytes = Buffer.concat(chunks);
            const entry: ParametersParameter = {
              name,
              valueAttachment: {
                contentType: info.mimeType,
                // FHIR has no empty base64Binary: an empty file is an Attachment of size 0 without data.
                ...(bytes.length > 0 ? { data: bytes.toString('base64') } : { size: 0 }),
                ...(info.filename ? { title: info.filename } : {}),
              },
            };
            parameter.push(entry);
            done();
          });
        }),
      );
    });
    parser.on('error', (err: Error) => reject(badRequest(`The multipart/form-data body cannot be read: ${err.message}`)));
    parser.on('close', resolve);
    Readable.from([body]).pipe(parser);
  });
  await Promise.all(files);
  return { resourceType: 'Parameters', parameter };
}
