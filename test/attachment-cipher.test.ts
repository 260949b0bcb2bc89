import type { Binary } from '@medplum/fhirtypes';
import { randomBytes } from 'node:crypto';
import { AttachmentCipher } from '../src/storage/attachment-cipher.js';

/** Key rotation and tamper evidence of document encryption at rest (the HTTP path is in documents.test.ts). */
describe('document content encryption at rest', () => {
  const oldKey = { id: 'k2025', key: randomBytes(32) };
  const newKey = { id: 'k2026', key: randomBytes(32) };
  const binary: Binary = { resourceType: 'Binary', id: 'b1', contentType: 'application/pdf', data: Buffer.from('%PDF-1.7 secret lab values').toString('base64') };

  test('a value sealed with an old key still opens after a new key is prepended; new writes use the new key', () => {
    const sealed = new AttachmentCipher([oldKey]).seal(binary);
    expect(sealed.data).not.toBe(binary.data);
    const rotated = new AttachmentCipher([newKey, oldKey]);
    expect(rotated.open(structuredClone(sealed))).toEqual(binary);
    // The key id sits in the primitive extension of `data` (`_data` in FHIR JSON).
    const marker = (rotated.seal(binary) as Binary & { _data?: { extension?: { valueString?: string }[] } })._data?.extension?.[0];
    expect(marker?.valueString).toMatch(/^k2026:/);
  });

  test('a value whose key was removed, or which was moved to another resource, does not open', () => {
    const sealed = new AttachmentCipher([oldKey]).seal(binary);
    expect(() => new AttachmentCipher([newKey]).open(structuredClone(sealed))).toThrow(/key "k2025", which is not configured/);
    expect(() => new AttachmentCipher([oldKey]).open({ ...structuredClone(sealed), id: 'b2' })).toThrow();
  });

  test('a client cannot pass its own bytes off as sealed', () => {
    const forged: Binary = { ...binary, _data: { extension: [{ url: 'https://carelens.dev/fhir/StructureDefinition/encrypted-at-rest', valueString: 'k2025:AAAA:AAAA' }] } } as Binary;
    const cipher = new AttachmentCipher([oldKey]);
    expect(cipher.open(cipher.seal(forged))).toEqual(binary);
  });
});
