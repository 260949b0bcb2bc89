import { hash, verify } from '@node-rs/argon2';
import { randomUUID } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import type { SqlClient } from '../storage/sql.js';

export type Role = 'patient' | 'nurse' | 'physician' | 'admin';
export const ROLES: readonly Role[] = ['patient', 'nurse', 'physician', 'admin'];

export interface User {
  id: string;
  username: string;
  role: Role;
  /** Relative reference to the Practitioner, Patient or RelatedPerson the user acts as, e.g. "Practitioner/123". */
  fhirUser?: string;
  totpEnabled: boolean;
}

interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  role: Role;
  fhir_user: string | null;
  totp_secret: string | null;
  failed_logins: number;
  locked_until: string | null;
}

/** OWASP's argon2id minimum (19 MiB, 2 passes): memory-hard, about 30 ms per hash here. */
const ARGON2 = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };
/** Failed passwords in a row before the account locks, and for how long. */
export const MAX_FAILED_LOGINS = 5;
const LOCK_MINUTES = 15;
/** Verifying against this when the user does not exist keeps response times equal, so usernames cannot be probed. */
const DUMMY_HASH = await hash('carelens-no-such-user', ARGON2);

export type LoginResult =
  | { ok: true; user: User }
  | { ok: false; reason: 'invalid' | 'locked'; userId?: string };

export class UserStore {
  constructor(private readonly sql: SqlClient) {}

  async create(input: { username: string; password: string; role: Role; fhirUser?: string; totpSecret?: string }): Promise<User> {
    if (!/^[A-Za-z0-9._@-]{3,64}$/.test(input.username)) {
      throw new UserError('username must be 3-64 characters of letters, digits, . _ @ -');
    }
    if (input.password.length < 12) {
      throw new UserError('password must be at least 12 characters');
    }
    if (!ROLES.includes(input.role)) {
      throw new UserError(`role must be one of ${ROLES.join(', ')}`);
    }
    if (input.fhirUser && !/^(Practitioner|Patient|RelatedPerson)\/[A-Za-z0-9\-.]{1,64}$/.test(input.fhirUser)) {
      throw new UserError('fhirUser must reference a Practitioner, Patient or RelatedPerson, e.g. Practitioner/123');
    }
    if (input.role === 'patient' && !input.fhirUser?.startsWith('Patient/')) {
      throw new UserError('a patient user must be linked to their Patient resource (fhirUser Patient/<id>)');
    }
    const id = randomUUID();
    const rows = await this.sql.query<UserRow>(
      `INSERT INTO app_user (id, username, password_hash, role, fhir_user, totp_secret) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (username) DO NOTHING RETURNING *`,
      [id, input.username, await hash(input.password, ARGON2), input.role, input.fhirUser ?? null, input.totpSecret ?? null],
    );
    if (rows.length === 0) {
      throw new UserError(`username "${input.username}" is taken`);
    }
    return toUser(rows[0]);
  }

  /**
   * Creates a user with a second factor when they are an admin (always) or ask for one: its secret
   * is returned once, here, as an otpauth:// URI for an authenticator app, and never shown again.
   */
  async enrol(
    input: { username: string; password: string; role: Role; fhirUser?: string },
    options: { secondFactor?: boolean } = {},
  ): Promise<User & { totpUri?: string }> {
    const totpSecret = input.role === 'admin' || options.secondFactor ? new Secret({ size: 20 }).base32 : undefined;
    const user = await this.create({ ...input, ...(totpSecret ? { totpSecret } : {}) });
    return totpSecret ? { ...user, totpUri: totpFor(totpSecret, user.username).toString() } : user;
  }

  async findById(id: string): Promise<User | undefined> {
    const rows = await this.sql.query<UserRow>('SELECT * FROM app_user WHERE id = $1', [id]);
    return rows[0] ? toUser(rows[0]) : undefined;
  }

  async findByUsername(username: string): Promise<User | undefined> {
    const rows = await this.sql.query<UserRow>('SELECT * FROM app_user WHERE username = $1', [username]);
    return rows[0] ? toUser(rows[0]) : undefined;
  }

  async list(): Promise<User[]> {
    return (await this.sql.query<UserRow>('SELECT * FROM app_user ORDER BY username')).map(toUser);
  }

  /**
   * Checks a password. Each failure counts; the fifth in a row locks the account for 15 minutes,
   * during which even the right password is refused.
   */
  async verifyPassword(username: string, password: string): Promise<LoginResult> {
    const rows = await this.sql.query<UserRow>('SELECT * FROM app_user WHERE username = $1', [username]);
    const row = rows[0];
    if (!row) {
      await verify(DUMMY_HASH, password);
      return { ok: false, reason: 'invalid' };
    }
    if (row.locked_until && Date.parse(row.locked_until) > Date.now()) {
      return { ok: false, reason: 'locked', userId: row.id };
    }
    if (!(await verify(row.password_hash, password))) {
      const updated = await this.sql.query<{ failed_logins: number }>(
        `UPDATE app_user SET failed_logins = failed_logins + 1,
           locked_until = CASE WHEN failed_logins + 1 >= $2 THEN now() + make_interval(mins => $3) ELSE locked_until END
         WHERE id = $1 RETURNING failed_logins`,
        [row.id, MAX_FAILED_LOGINS, LOCK_MINUTES],
      );
      return { ok: false, reason: (updated[0]?.failed_logins ?? 0) >= MAX_FAILED_LOGINS ? 'locked' : 'invalid', userId: row.id };
    }
    await this.sql.query('UPDATE app_user SET failed_logins = 0, locked_until = NULL WHERE id = $1', [row.id]);
    return { ok: true, user: toUser(row) };
  }

  /** A TOTP code (RFC 6238, 30 s steps, one step of drift either way) for a user who has a second factor. */
  async verifyTotp(userId: string, code: string): Promise<boolean> {
    const rows = await this.sql.query<{ totp_secret: string | null }>('SELECT totp_secret FROM app_user WHERE id = $1', [userId]);
    const secret = rows[0]?.totp_secret;
    if (!secret || !/^\d{6}$/.test(code)) {
      return false;
    }
    return totpFor(secret).validate({ token: code, window: 1 }) !== null;
  }
}

export class UserError extends Error {}

function totpFor(secret: string, label = 'carelens'): TOTP {
  return new TOTP({ issuer: 'carelens', label, algorithm: 'SHA1', digits: 6, period: 30, secret: Secret.fromBase32(secret) });
}

function toUser(row: UserRow): User {
  return {
    id: row.id,
    username: row.username,
    role: row.role,
    ...(row.fhir_user ? { fhirUser: row.fhir_user } : {}),
    totpEnabled: row.totp_secret !== null,
  };
}
