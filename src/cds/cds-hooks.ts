/**
 * CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/): discovery at GET /cds-services, service calls at
 * POST /cds-services/{id}, feedback at POST /cds-services/{id}/feedback. Services are discovered
 * from cds-hooks/<id>/service.json + handler.ts, like operations; they receive the prefetched (or
 * fetched) FHIR data and return cards.
 */
import Router from '@koa/router';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { badRequest, FhirError, issue, notFound } from '../fhir/outcome.js';
import type { Platform } from '../fhir/operations.js';
import type { FhirRouter } from '../fhir/router.js';
import { readJsonObject } from '../http/body.js';
import type { AppState } from '../http/request-id.js';
import type { CdsClientAuth } from './client-auth.js';
import { bundleResources, type PatientRecord, recordFromResources } from '../risk/patient-record.js';

export interface CdsServiceDefinition {
  id: string;
  hook: string;
  title: string;
  description: string;
  prefetch?: Record<string, string>;
  usageRequirements?: string;
}

export interface CdsRequest {
  hook: string;
  hookInstance: string;
  fhirServer?: string;
  fhirAuthorization?: { access_token: string; token_type: string; expires_in?: number; scope?: string; subject?: string; patient?: string };
  context: Record<string, unknown> & { patientId?: string; userId?: string; draftOrders?: Bundle; selections?: string[]; encounterId?: string };
  prefetch?: Record<string, Resource | null>;
}

export interface Action {
  type: 'create' | 'update' | 'delete';
  description: string;
  resource?: Resource;
  resourceId?: string;
}

export interface Card {
  uuid: string;
  summary: string;
  detail?: string;
  indicator: 'info' | 'warning' | 'critical';
  source: { label: string; url?: string; topic?: { system?: string; code: string; display?: string } };
  suggestions?: { label: string; uuid: string; isRecommended?: boolean; actions?: Action[] }[];
  selectionBehavior?: 'at-most-one' | 'any';
  overrideReasons?: { code: string; system: string; display: string }[];
  links?: { label: string; url: string; type: 'absolute' | 'smart'; appContext?: string }[];
}

/** What a service handler gets: the call, its prefetch resolved, and the platform. */
export interface CdsContext {
  request: CdsRequest;
  /** Each prefetch key of the service: the resource (or searchset Bundle), or null when unavailable. */
  data: Record<string, Resource | null>;
  platform: Platform;
  /** This server's origin, for links to model cards and apps. */
  origin: string;
}

export type CdsHandler = (ctx: CdsContext) => Promise<Card[]>;

const FEEDBACK_OUTCOMES = new Set(['accepted', 'overridden']);

export class CdsServices {
  private readonly services = new Map<string, { definition: CdsServiceDefinition; handler: CdsHandler }>();

  constructor(
    private readonly fhir: FhirRouter,
    private readonly platform: Platform,
    private readonly auth: CdsClientAuth,
    private readonly origin: string,
    private readonly maxBodyBytes: number,
  ) {}

  /** Loads every cds-hooks/<id>/ folder. */
  async load(root: string): Promise<void> {
    const dir = join(root, 'cds-hooks');
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name, 'service.json');
      if (!existsSync(path)) continue;
      const definition = JSON.parse(readFileSync(path, 'utf8')) as CdsServiceDefinition;
      if (definition.id !== name || !definition.hook) throw new Error(`cds-hooks/${name}/service.json must have id "${name}" and a hook`);
      const module = (await import(`../../cds-hooks/${name}/handler.js`)) as { handler?: CdsHandler };
      if (typeof module.handler !== 'function') throw new Error(`cds-hooks/${name}/handler must export a function named handler`);
      this.services.set(name, { definition, handler: module.handler });
    }
  }

  routes(): Router<AppState> {
    // CORS for browser callers is the app's (http/cors.ts).
    const router = new Router<AppState>();
    router.get('/cds-services', (ctx) => {
      ctx.body = { services: [...this.services.values()].map((s) => s.definition) };
    });
    router.post('/cds-services/:id', async (ctx) => {
      const service = this.service(ctx.params.id);
      await this.auth.verify(ctx.get('Authorization') || undefined, `${this.origin}/cds-services/${service.definition.id}`);
      const request = parseRequest(await readJsonObject(ctx, this.maxBodyBytes), service.definition);
      const data = await this.prefetch(request, service.definition);
      const cards = await service.handler({ request, data, platform: this.platform, origin: this.origin });
      ctx.body = { cards };
    });
    router.post('/cds-services/:id/feedback', async (ctx) => {
      const service = this.service(ctx.params.id);
      await this.auth.verify(ctx.get('Authorization') || undefined, `${this.origin}/cds-services/${service.definition.id}/feedback`);
      const body = (await readJsonObject(ctx, this.maxBodyBytes)) as { feedback?: { card?: string; outcome?: string; outcomeTimestamp?: string; acceptedSuggestions?: { id: string }[]; overrideReason?: { reason?: { code?: string; display?: string }; userComment?: string } }[] };
      if (!Array.isArray(body.feedback) || body.feedback.some((f) => typeof f.card !== 'string' || !FEEDBACK_OUTCOMES.has(f.outcome ?? ''))) {
        throw badRequest('feedback must be an array of {card, outcome: accepted | overridden, outcomeTimestamp, acceptedSuggestions?, overrideReason?}');
      }
      await this.fhir.repo.transaction(async (w) => {
        for (const f of body.feedback!) {
          await w.createServerAuthored({
            resourceType: 'AuditEvent',
            type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'Restful Operation' },
            subtype: [{ system: 'https://carelens.dev/fhir/CodeSystem/cds-feedback', code: f.outcome!, display: `CDS card ${f.outcome}` }],
            action: 'E',
            recorded: f.outcomeTimestamp && !Number.isNaN(Date.parse(f.outcomeTimestamp)) ? new Date(f.outcomeTimestamp).toISOString() : new Date().toISOString(),
            outcome: '0',
            agent: [{ requestor: true, who: { display: service.definition.id } }],
            source: { observer: { display: 'carelens CDS Hooks' } },
            entity: [
              {
                what: { identifier: { system: 'urn:ietf:rfc:4122', value: f.card } },
                name: f.card,
                description: [
                  f.acceptedSuggestions?.length ? `accepted suggestions: ${f.acceptedSuggestions.map((s) => s.id).join(', ')}` : undefined,
                  f.overrideReason?.reason?.code ? `override reason: ${f.overrideReason.reason.code}` : undefined,
                  f.overrideReason?.userComment ? `comment: ${f.overrideReason.userComment}` : undefined,
                ].filter(Boolean).join('; ') || undefined,
              },
            ],
          });
        }
      });
      ctx.body = {};
    });
    return router;
  }

  private service(id: string): { definition: CdsServiceDefinition; handler: CdsHandler } {
    const service = this.services.get(id);
    if (!service) throw notFound(`No CDS service "${id}"`);
    return service;
  }

  /**
   * Each prefetch key: from the request when the client sent it, else fetched from fhirServer with
   * the fhirAuthorization token (any FHIR server, including this one), else null.
   */
  private async prefetch(request: CdsRequest, definition: CdsServiceDefinition): Promise<Record<string, Resource | null>> {
    const data: Record<string, Resource | null> = {};
    for (const [key, template] of Object.entries(definition.prefetch ?? {})) {
      if (request.prefetch && key in request.prefetch) {
        data[key] = request.prefetch[key];
        continue;
      }
      if (!request.fhirServer || !request.fhirAuthorization) {
        data[key] = null;
        continue;
      }
      const url = `${request.fhirServer.replace(/\/+$/, '')}/${fillTemplate(template, request)}`;
      const response = await fetch(url, { headers: { Authorization: `Bearer ${request.fhirAuthorization.access_token}`, Accept: 'application/fhir+json' } }).catch(() => undefined);
      data[key] = response?.ok ? ((await response.json()) as Resource) : null;
    }
    return data;
  }
}

/** Prefetch tokens: {{context.x}} and {{userPractitionerId}} / {{userPatientId}} from context.userId. */
export function fillTemplate(template: string, request: CdsRequest): string {
  return template.replace(/\{\{\s*([\w.]+)\s*\}\}/g, (_, token: string) => {
    const userId = String(request.context.userId ?? '');
    const value =
      token === 'userPractitionerId' ? userId.replace(/^Practitioner\//, '')
        : token === 'userPatientId' ? userId.replace(/^Patient\//, '')
          : token === 'userPractitionerRoleId' ? userId.replace(/^PractitionerRole\//, '')
            : token.startsWith('context.') ? request.context[token.slice('context.'.length)]
              : undefined;
    return encodeURIComponent(String(value ?? ''));
  });
}

function parseRequest(body: unknown, definition: CdsServiceDefinition): CdsRequest {
  const r = body as Partial<CdsRequest>;
  if (typeof r !== 'object' || r === null || typeof r.hook !== 'string' || typeof r.hookInstance !== 'string' || typeof r.context !== 'object' || r.context === null) {
    throw badRequest('A CDS Hooks request needs hook, hookInstance and context');
  }
  if (r.hook !== definition.hook) throw badRequest(`Service ${definition.id} answers the ${definition.hook} hook, not ${r.hook}`);
  if (r.fhirAuthorization && (typeof r.fhirAuthorization.access_token !== 'string' || !r.fhirServer)) {
    throw badRequest('fhirAuthorization needs an access_token, and fhirServer must be given with it');
  }
  if (r.fhirServer !== undefined && !/^https?:\/\//.test(r.fhirServer)) throw badRequest('fhirServer must be an absolute http(s) URL');
  return r as CdsRequest;
}

export function newCard(card: Omit<Card, 'uuid'>): Card {
  if (card.summary.length > 140) throw new FhirError(500, [issue('exception', `CDS card summary over 140 characters: ${card.summary.slice(0, 40)}…`)]);
  return { uuid: randomUUID(), ...card };
}

/** The resources of a prefetch value: a resource itself, or a searchset Bundle's entries. */
export function resourcesOf(value: Resource | null | undefined): Resource[] {
  if (!value) return [];
  return value.resourceType === 'Bundle' ? bundleResources(value) : [value];
}


/** The patient's record assembled from every prefetch value (undefined without the Patient). */
export function recordOf(data: Record<string, Resource | null>): PatientRecord | undefined {
  const record = recordFromResources(Object.values(data).flatMap(resourcesOf));
  return typeof record === 'string' ? undefined : record;
}
