import type { AuthServer } from '../auth/auth-server.js';
import type { Role } from '../auth/users.js';
import { DEMO_PATIENT_IDS, NURSE_ID, PHYSICIAN_ID } from './demo-bundle.js';

/**
 * Who can sign in to a demo server (`npm start`): one user per role, linked to the demo data set,
 * and an operator client for scripts. Demo credentials are fixed and printed so anyone can try the
 * server at once; they exist only when the demo data is loaded, never in a normal start.
 */
export const DEMO_USERS: readonly { username: string; password: string; role: Role; fhirUser: string }[] = [
  { username: 'nurse', password: 'demo-nurse-password', role: 'nurse', fhirUser: `Practitioner/${NURSE_ID}` },
  { username: 'physician', password: 'demo-physician-password', role: 'physician', fhirUser: `Practitioner/${PHYSICIAN_ID}` },
  { username: 'patient', password: 'demo-patient-password', role: 'patient', fhirUser: `Patient/${DEMO_PATIENT_IDS[0]}` },
  { username: 'admin', password: 'demo-admin-password', role: 'admin', fhirUser: `Practitioner/${PHYSICIAN_ID}` },
];
/** The demo admin's TOTP secret (base32), for an authenticator app or `otpauth`. */
export const DEMO_ADMIN_TOTP_SECRET = 'KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU';
export const DEMO_OPERATOR = { id: 'demo-operator', secret: 'demo-operator-secret-not-for-production' };

export async function seedDemoAccess(auth: AuthServer): Promise<void> {
  for (const user of DEMO_USERS) {
    if (!(await auth.users.findByUsername(user.username))) {
      await auth.users.create({ ...user, ...(user.role === 'admin' ? { totpSecret: DEMO_ADMIN_TOTP_SECRET } : {}) });
    }
  }
  await auth.clients.ensureAdminClient(DEMO_OPERATOR.id, DEMO_OPERATOR.secret);
}
