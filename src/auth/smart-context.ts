import { randomBytes } from 'node:crypto';
import type { AdapterPayload } from 'oidc-provider';
import type { OAuthStore } from './store.js';
import type { Role } from './users.js';

/** What an access token knows besides its scopes: the SMART launch context and who it acts for. */
export interface TokenContext {
  /** The id of the patient in context (SMART `patient`). */
  patient?: string;
  encounter?: string;
  need_patient_banner?: boolean;
  smart_style_url?: string;
  /** The signed-in user's role and FHIR identity (relative reference), for the role policy. */
  role?: Role;
  fhirUser?: string;
}

/** An EHR launch: context the EHR fixed before the app started. */
export interface LaunchContext {
  patient?: string;
  encounter?: string;
}

/** Long enough for a user to finish signing in, short enough that a leaked handle soon dies. */
const LAUNCH_TTL_SECONDS = 3600;
const CHOICE_TTL_SECONDS = 3600;

/**
 * SMART's state beside oidc-provider's own: EHR launch handles, the patient picked during a
 * standalone launch, and the context bound to each grant (so refreshed tokens keep it).
 */
export class SmartContextStore {
  constructor(private readonly store: OAuthStore) {}

  async createLaunch(context: LaunchContext): Promise<string> {
    const handle = randomBytes(18).toString('base64url');
    await this.store.model('SmartLaunch').upsert(handle, context as AdapterPayload, LAUNCH_TTL_SECONDS);
    return handle;
  }

  async findLaunch(handle: string): Promise<LaunchContext | undefined> {
    return (await this.store.model('SmartLaunch').find(handle)) as LaunchContext | undefined;
  }

  async saveChoice(interactionUid: string, choice: LaunchContext): Promise<void> {
    await this.store.model('InteractionChoice').upsert(interactionUid, choice as AdapterPayload, CHOICE_TTL_SECONDS);
  }

  async choice(interactionUid: string): Promise<LaunchContext | undefined> {
    return (await this.store.model('InteractionChoice').find(interactionUid)) as LaunchContext | undefined;
  }

  /** Stored under the grant id, so revoking the grant removes it with the grant's tokens. */
  async saveForGrant(grantId: string, context: TokenContext, ttlSeconds: number): Promise<void> {
    await this.store.model('SmartContext').upsert(grantId, { ...context, grantId } as AdapterPayload, ttlSeconds);
  }

  async forGrant(grantId: string): Promise<TokenContext | undefined> {
    const found = (await this.store.model('SmartContext').find(grantId)) as (TokenContext & { grantId?: string }) | undefined;
    if (!found) {
      return undefined;
    }
    const { grantId: _omit, ...context } = found;
    return context;
  }
}
