import { randomFillSync } from 'node:crypto';

const pool = Buffer.alloc(16 * 256);
let next = pool.length;

/**
 * A new server-assigned logical id: a UUID version 7 (RFC 9562), whose leading 48 bits are the
 * creation time in milliseconds. Ids made close in time sort close together, so every B-tree keyed
 * on the id (the resource and history keys, each search-index table's per-resource key) grows at
 * its right edge instead of touching a random page per insert, as random (version 4) UUIDs do. The
 * time they reveal is already in meta.lastUpdated.
 */
export function newResourceId(): string {
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  const bytes = pool.subarray(next, next + 16);
  next += 16;
  bytes.writeUIntBE(Date.now(), 0, 6);
  bytes[6] = 0x70 | (bytes[6] & 0x0f);
  bytes[8] = 0x80 | (bytes[8] & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
