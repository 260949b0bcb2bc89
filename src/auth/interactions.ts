import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { errors, type Interaction } from 'oidc-provider';
import type { AppState } from '../http/request-id.js';
import type { FhirRouter } from '../fhir/router.js';
import { escapeHtml, page } from './provider.js';
import { parseScopes } from './scopes.js';
import type { LaunchContext, SmartContextStore, TokenContext } from './smart-context.js';
import type { User, UserStore } from './users.js';

export interface LoginEvent {
  outcome: 'success' | 'failure' | 'locked';
  userId?: string;
  clientId?: string;
  ip: string;
}

export interface InteractionOptions {
  provider: Provider;
  users: UserStore;
  contexts: SmartContextStore;
  fhir: FhirRouter;
  fhirBaseUrl: string;
  /** URL of the SMART style sheet returned as smart_style_url. */
  smartStyleUrl: string;
  grantTtlSeconds: number;
  /** Told of every login attempt (the audit trail). */
  onLogin: (event: LoginEvent) => Promise<void>;
}

/**
 * The pages a person sees while an app asks for access: sign in (password, plus a TOTP code for
 * accounts with a second factor), pick a patient (practitioners in a standalone launch), and
 * approve the app's scopes. Plain server-rendered HTML forms, labelled for screen readers.
 */
export function interactionRoutes(options: InteractionOptions): Router<AppState> {
  const { provider, users, contexts } = options;
  const router = new Router<AppState>({ prefix: '/auth/interaction' });
  // Protocol errors (an expired or unknown sign-in session, say) are shown to the person as a page.
  router.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!(err instanceof errors.OIDCProviderError)) {
        throw err;
      }
      ctx.status = err.statusCode;
      ctx.body = page('Sign-in problem', `<p class="error" role="alert">${escapeHtml(err.error_description ?? err.message)}</p><p>Start again from the app.</p>`);
    }
  });

  router.get('/:uid', async (ctx) => {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    await render(ctx, details);
  });

  router.post('/:uid/login', async (ctx) => {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const form = await readForm(ctx);
    const username = form.get('username') ?? '';
    const result = await users.verifyPassword(username, form.get('password') ?? '');
    const clientId = String(details.params.client_id ?? '');
    if (!result.ok) {
      await options.onLogin({ outcome: result.reason === 'locked' ? 'locked' : 'failure', userId: result.userId, clientId, ip: ctx.ip });
      const message = result.reason === 'locked' ? 'This account is locked after too many failed attempts. Try again in 15 minutes.' : 'Wrong username or password.';
      ctx.status = result.reason === 'locked' ? 423 : 401;
      ctx.body = loginPage(details.uid, message, username);
      return;
    }
    const user = result.user;
    if (user.role === 'admin' || user.totpEnabled) {
      if (!(await users.verifyTotp(user.id, form.get('totp') ?? ''))) {
        await options.onLogin({ outcome: 'failure', userId: user.id, clientId, ip: ctx.ip });
        ctx.status = 401;
        ctx.body = loginPage(details.uid, 'This account needs the 6-digit code from your authenticator app.', username);
        return;
      }
    }
    await options.onLogin({ outcome: 'success', userId: user.id, clientId, ip: ctx.ip });
    await finish(ctx, { login: { accountId: user.id } }, false);
  });

  router.post('/:uid/patient', async (ctx) => {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const user = await signedInUser(details);
    const patient = (await readForm(ctx)).get('patient') ?? '';
    if (!user || user.role === 'patient' || !/^[A-Za-z0-9\-.]{1,64}$/.test(patient)) {
      ctx.status = 400;
      ctx.body = page('Choose a patient', '<p class="error" role="alert">Choose a patient from the list.</p>');
      return;
    }
    await options.fhir.repo.read('Patient', patient);
    await contexts.saveChoice(details.uid, { patient });
    ctx.redirect(`/auth/interaction/${details.uid}`);
  });

  router.post('/:uid/consent', async (ctx) => {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const user = await signedInUser(details);
    const form = await readForm(ctx);
    if (!user || details.prompt.name !== 'consent') {
      ctx.redirect(`/auth/interaction/${details.uid}`);
      return;
    }
    if (form.get('decision') !== 'allow') {
      await finish(ctx, { error: 'access_denied', error_description: 'The user did not allow access' }, false);
      return;
    }
    const context = await launchContext(details, user);
    if (!('token' in context)) {
      ctx.redirect(`/auth/interaction/${details.uid}`);
      return;
    }
    const grant = new provider.Grant({ accountId: user.id, clientId: String(details.params.client_id) });
    const promptDetails = details.prompt.details as { missingOIDCScope?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (promptDetails.missingOIDCScope) {
      grant.addOIDCScope(promptDetails.missingOIDCScope.join(' '));
    }
    for (const [resource, scopes] of Object.entries(promptDetails.missingResourceScopes ?? {})) {
      grant.addResourceScope(resource, scopes.join(' '));
    }
    const grantId = await grant.save();
    await contexts.saveForGrant(grantId, context.token, options.grantTtlSeconds);
    await finish(ctx, { consent: { grantId } }, true);
  });

  async function render(ctx: Context, details: Interaction): Promise<void> {
    // SMART: the app names the FHIR server it wants access to; a request for any other is refused.
    const aud = typeof details.params.aud === 'string' ? details.params.aud.replace(/\/+$/, '') : undefined;
    if (aud !== options.fhirBaseUrl) {
      await finish(ctx, { error: 'invalid_request', error_description: `aud must be this server's FHIR base URL, ${options.fhirBaseUrl}` }, false);
      return;
    }
    if (details.prompt.name === 'login') {
      ctx.body = loginPage(details.uid);
      return;
    }
    const user = await signedInUser(details);
    if (!user) {
      ctx.body = loginPage(details.uid);
      return;
    }
    const context = await launchContext(details, user);
    if ('error' in context) {
      await finish(ctx, { error: 'invalid_request', error_description: context.error }, false);
      return;
    }
    if ('pickPatient' in context) {
      ctx.body = await patientPicker(details.uid);
      return;
    }
    const client = await provider.Client.find(String(details.params.client_id));
    ctx.body = consentPage(details.uid, client?.clientName ?? String(details.params.client_id), String(details.params.scope ?? ''), context.token.patient);
  }

  async function signedInUser(details: Interaction): Promise<User | undefined> {
    const accountId = details.session?.accountId;
    return accountId ? users.findById(accountId) : undefined;
  }

  /**
   * The context the token will carry: from the EHR's launch handle, from the patient user's own
   * record, or from the patient a practitioner picked.
   */
  async function launchContext(
    details: Interaction,
    user: User,
  ): Promise<{ token: TokenContext } | { error: string } | { pickPatient: true }> {
    const scopes = parseScopes(String(details.params.scope ?? '')).other;
    const base: TokenContext = { role: user.role, ...(user.fhirUser ? { fhirUser: user.fhirUser } : {}) };
    const ownPatient = user.role === 'patient' ? user.fhirUser?.replace(/^Patient\//, '') : undefined;
    let launch: LaunchContext | undefined;
    if (typeof details.params.launch === 'string') {
      launch = await contexts.findLaunch(details.params.launch);
      if (!launch) {
        return { error: 'The launch handle is unknown or has expired: start the app again from the EHR' };
      }
      if (ownPatient && launch.patient && launch.patient !== ownPatient) {
        return { error: 'This launch is for another patient' };
      }
      return { token: { ...base, ...launch, need_patient_banner: false, smart_style_url: options.smartStyleUrl } };
    }
    if (ownPatient) {
      return { token: { ...base, patient: ownPatient, need_patient_banner: true, smart_style_url: options.smartStyleUrl } };
    }
    if (scopes.has('launch/patient')) {
      const chosen = await contexts.choice(details.uid);
      if (!chosen?.patient) {
        return { pickPatient: true };
      }
      return { token: { ...base, patient: chosen.patient, need_patient_banner: true, smart_style_url: options.smartStyleUrl } };
    }
    return { token: base };
  }

  async function patientPicker(uid: string): Promise<string> {
    const fhir = options.fhir;
    const patients = await fhir.repo.search(fhir.parseSearch('Patient', [['_count', '200'], ['_sort', 'family']], false));
    const choices = patients
      .map((p, i) => {
        const resource = p.resource as { name?: { given?: string[]; family?: string }[]; birthDate?: string } | undefined;
        const name = resource?.name?.[0];
        const label = `${[...(name?.given ?? []), name?.family ?? ''].join(' ').trim() || 'Unnamed patient'}${resource?.birthDate ? `, born ${resource.birthDate}` : ''}`;
        return `<div><input type="radio" name="patient" id="p${i}" value="${escapeHtml(p.id)}"${i === 0 ? ' checked' : ''}><label for="p${i}" style="display:inline;font-weight:normal"> ${escapeHtml(label)}</label></div>`;
      })
      .join('\n');
    return page(
      'Choose a patient',
      `<form method="post" action="/auth/interaction/${escapeHtml(uid)}/patient"><fieldset><legend>Patients</legend>${choices || '<p>No patients are recorded.</p>'}</fieldset><button type="submit">Continue</button></form>`,
    );
  }

  async function finish(ctx: Context, result: Parameters<Provider['interactionFinished']>[2], merge: boolean): Promise<void> {
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
    ctx.respond = false;
  }

  return router;
}

function loginPage(uid: string, error?: string, username = ''): string {
  return page(
    'Sign in',
    `${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/auth/interaction/${escapeHtml(uid)}/login">
<label for="username">Username</label><input id="username" name="username" autocomplete="username" required value="${escapeHtml(username)}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<label for="totp">Authenticator code <span style="font-weight:normal">(accounts with two-factor sign-in)</span></label><input id="totp" name="totp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}">
<button type="submit">Sign in</button>
</form>`,
  );
}

function consentPage(uid: string, appName: string, scope: string, patient?: string): string {
  const items = scope
    .split(/\s+/)
    .filter(Boolean)
    .map((s) => `<li><code>${escapeHtml(s)}</code></li>`)
    .join('');
  return page(
    'Allow access?',
    `<p><strong>${escapeHtml(appName)}</strong> asks for access${patient ? ` to the record of patient <code>${escapeHtml(patient)}</code>` : ''}:</p>
<ul>${items}</ul>
<form method="post" action="/auth/interaction/${escapeHtml(uid)}/consent">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`,
  );
}

const MAX_FORM_BYTES = 16 * 1024;

async function readForm(ctx: Context): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) {
      ctx.throw(413, 'form too large');
    }
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
