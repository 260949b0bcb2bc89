import type { Attachment, Binary, DocumentReference, Extension, Resource } from '@medplum/fhirtypes';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { SqlClient } from './sql.js';

/** Marks an encrypted primitive: `_data` carries "<key id>:<iv>:<auth tag>" (base64), `data` the ciphertext. */
const SEALED_URL = 'https://carelens.dev/fhir/StructureDefinition/encrypted-at-rest';

export interface EncryptionKey {
  id: string;
  key: Buffer;
}

type Sealable = { data?: string; _data?: { extension?: Extension[] } };

/**
 * Encrypts document content at rest with AES-256-GCM: Binary.data and the inline attachments of
 * DocumentReference. Each sealed value names its key, so keys rotate: the first key seals, every
 * listed key opens. The resource's type and id are bound in as associated data, so ciphertext
 * moved to another resource does not open. Everything else in the resource stays searchable.
 */
export class AttachmentCipher {
  private readonly byId: Map<string, Buffer>;

  constructor(private readonly keys: readonly EncryptionKey[]) {
    if (keys.length === 0) {
      throw new Error('AttachmentCipher needs at least one key');
    }
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
  }

  /**
   * The configured keys, or (for the embedded default and development) a key generated once and kept
   * in the database: that protects copies of the data files less, and start-up says so.
   */
  static async open(sql: SqlClient, configured: readonly EncryptionKey[] | undefined, warn: (message: string) => void): Promise<AttachmentCipher> {
    if (configured?.length) {
      return new AttachmentCipher(configured);
    }
    await sql.query('INSERT INTO encryption_key (id, key) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', ['db-1', randomBytes(32).toString('base64')]);
    const rows = await sql.query<{ id: string; key: string }>('SELECT id, key FROM encryption_key ORDER BY created_at DESC, id');
    warn('ENCRYPTION_KEYS is not set: document content is encrypted with a key kept in the database; set ENCRYPTION_KEYS in production');
    return new AttachmentCipher(rows.map((r) => ({ id: r.id, key: Buffer.from(r.key, 'base64') })));
  }

  /** A copy of the resource as stored: its document content encrypted. The resource must have its id. */
  seal<T extends Resource>(resource: T): T {
    const places = sealablePlaces(resource);
    if (places.length === 0) {
      return resource;
    }
    const copy = structuredClone(resource);
    for (const place of sealablePlaces(copy)) {
      this.sealOne(place, aad(copy));
    }
    return copy;
  }

  /** The resource as clients see it: document content decrypted. */
  open<T extends Resource>(resource: T): T {
    for (const place of sealablePlaces(resource)) {
      const marker = place._data?.extension?.find((e) => e.url === SEALED_URL);
      if (marker?.valueString && place.data !== undefined) {
        const [keyId, iv, tag] = marker.valueString.split(':');
        const key = this.byId.get(keyId);
        if (!key) {
          throw new Error(`document content of ${aad(resource)} is sealed with key "${keyId}", which is not configured (ENCRYPTION_KEYS)`);
        }
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
        decipher.setAAD(Buffer.from(aad(resource)));
        decipher.setAuthTag(Buffer.from(tag, 'base64'));
        place.data = Buffer.concat([decipher.update(Buffer.from(place.data, 'base64')), decipher.final()]).toString('base64');
        stripMarker(place);
      }
    }
    return resource;
  }

  private sealOne(place: Sealable, associated: string): void {
    stripMarker(place); // a client cannot make the server treat its own bytes as sealed
    if (place.data === undefined) {
      return;
    }
    const { id, key } = this.keys[0];
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(associated));
    const sealed = Buffer.concat([cipher.update(Buffer.from(place.data, 'base64')), cipher.final()]);
    place.data = sealed.toString('base64');
    const marker: Extension = { url: SEALED_URL, valueString: `${id}:${iv.toString('base64')}:${cipher.getAuthTag().toString('base64')}` };
    place._data = { ...place._data, extension: [...(place._data?.extension ?? []), marker] };
  }
}

function aad(resource: Resource): string {
  return `${resource.resourceType}/${resource.id ?? ''}`;
}

function stripMarker(place: Sealable): void {
  const rest = place._data?.extension?.filter((e) => e.url !== SEALED_URL);
  if (!place._data) {
    return;
  }
  if (rest?.length) {
    place._data = { ...place._data, extension: rest };
  } else {
    const { extension: _dropped, ...others } = place._data;
    if (Object.keys(others).length) {
      place._data = others;
    } else {
      delete place._data;
    }
  }
}

/** The objects whose `data` holds document bytes. */
function sealablePlaces(resource: Resource): Sealable[] {
  if (resource.resourceType === 'Binary') {
    return [resource as Binary as Sealable];
  }
  if (resource.resourceType === 'DocumentReference') {
    return ((resource as DocumentReference).content ?? []).map((c) => c.attachment).filter((a): a is Attachment => Boolean(a)) as Sealable[];
  }
  return [];
}
