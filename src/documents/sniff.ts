/**
 * Media-type detection from magic bytes. Uploads declare a content type, but only the bytes are
 * trusted: a "PDF" that is really a Windows executable must be rejected with a message that says so.
 */

export type DocumentMediaType = 'application/pdf' | 'image/png' | 'image/jpeg';

/** Formats recognised only so that they can be rejected by name. */
export type RejectedFormat =
  | 'Windows executable (MZ/PE)'
  | 'ELF executable'
  | 'Mach-O executable'
  | 'script (shebang)'
  | 'ZIP archive (also DOCX/XLSX/JAR/APK)'
  | 'empty file';

export type SniffResult =
  | { kind: 'document'; mediaType: DocumentMediaType }
  | { kind: 'rejected'; format: RejectedFormat }
  | { kind: 'unknown' };

function startsWith(bytes: Uint8Array, signature: readonly number[], offset = 0): boolean {
  if (bytes.length < offset + signature.length) {
    return false;
  }
  return signature.every((byte, i) => bytes[offset + i] === byte);
}

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG = [0xff, 0xd8, 0xff];
const PDF = [0x25, 0x50, 0x44, 0x46, 0x2d]; // "%PDF-"
const MZ = [0x4d, 0x5a];
const ELF = [0x7f, 0x45, 0x4c, 0x46];
const SHEBANG = [0x23, 0x21]; // "#!"
const ZIP = [0x50, 0x4b, 0x03, 0x04];
const ZIP_EMPTY = [0x50, 0x4b, 0x05, 0x06];
// Mach-O thin binaries in both byte orders and word sizes, plus fat (universal) binaries.
const MACH_O = [
  [0xfe, 0xed, 0xfa, 0xce],
  [0xfe, 0xed, 0xfa, 0xcf],
  [0xce, 0xfa, 0xed, 0xfe],
  [0xcf, 0xfa, 0xed, 0xfe],
  [0xca, 0xfe, 0xba, 0xbe],
];

/**
 * PDF readers accept "%PDF-" anywhere in the first 1024 bytes, and some generators prepend junk;
 * being as lenient as the readers avoids rejecting files that open fine elsewhere.
 */
function findPdfHeader(bytes: Uint8Array): boolean {
  const limit = Math.min(bytes.length - PDF.length, 1024);
  for (let offset = 0; offset <= limit; offset++) {
    if (startsWith(bytes, PDF, offset)) {
      return true;
    }
  }
  return false;
}

export function sniff(bytes: Uint8Array): SniffResult {
  if (bytes.length === 0) {
    return { kind: 'rejected', format: 'empty file' };
  }
  // Executables first: a polyglot that begins with MZ is an executable whatever else it embeds.
  if (startsWith(bytes, MZ)) {
    return { kind: 'rejected', format: 'Windows executable (MZ/PE)' };
  }
  if (startsWith(bytes, ELF)) {
    return { kind: 'rejected', format: 'ELF executable' };
  }
  if (MACH_O.some((signature) => startsWith(bytes, signature))) {
    return { kind: 'rejected', format: 'Mach-O executable' };
  }
  if (startsWith(bytes, SHEBANG)) {
    return { kind: 'rejected', format: 'script (shebang)' };
  }
  if (startsWith(bytes, ZIP) || startsWith(bytes, ZIP_EMPTY)) {
    return { kind: 'rejected', format: 'ZIP archive (also DOCX/XLSX/JAR/APK)' };
  }
  if (startsWith(bytes, PNG)) {
    return { kind: 'document', mediaType: 'image/png' };
  }
  if (startsWith(bytes, JPEG)) {
    return { kind: 'document', mediaType: 'image/jpeg' };
  }
  if (findPdfHeader(bytes)) {
    return { kind: 'document', mediaType: 'application/pdf' };
  }
  return { kind: 'unknown' };
}

/** The accepted document type of these bytes, or undefined for anything else (see `sniff` for why). */
export function sniffMediaType(bytes: Uint8Array): DocumentMediaType | undefined {
  const result = sniff(bytes);
  return result.kind === 'document' ? result.mediaType : undefined;
}

/** Width and height from the PNG IHDR or the JPEG SOF marker, without decoding the pixels. */
export function imageSize(bytes: Uint8Array): { width: number; height: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length >= 24 && bytes[0] === 0x89 && bytes[1] === 0x50) {
    return { width: view.getUint32(16), height: view.getUint32(20) };
  }
  let offset = 2;
  while (offset + 9 < bytes.length && bytes[offset] === 0xff) {
    const marker = bytes[offset + 1];
    const length = view.getUint16(offset + 2);
    // SOF0–SOF15 carry the frame size, except DHT (C4), JPG (C8) and DAC (CC), which share the range.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { width: view.getUint16(offset + 7), height: view.getUint16(offset + 5) };
    }
    offset += 2 + length;
  }
  throw new Error('image size could not be read: not a PNG or baseline/progressive JPEG');
}
