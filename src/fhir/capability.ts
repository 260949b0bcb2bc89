import type { CapabilityStatement, CapabilityStatementRestResource } from '@medplum/fhirtypes';
import { AUTH_ROUTES } from '../auth/provider.js';
import { appliesTo, type OperationModule } from './operations.js';
import type { FhirRouter } from './router.js';

const TYPE_INTERACTIONS = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type'] as const;

/**
 * The CapabilityStatement is generated from what the server really has loaded — resource types,
 * the search parameters the search compiler supports, and the registered operations — never written by hand.
 */
export function buildCapabilityStatement(router: FhirRouter, operations: OperationModule[]): CapabilityStatement {
  const { defs, options } = router;
  const opRef = (op: OperationModule): { name: string; definition: string } => ({
    name: op.definition.code,
    definition: op.definition.url ?? `${options.baseUrl}/OperationDefinition/${op.definition.id ?? op.definition.code}`,
  });
  // _revinclude values by the type they reach: every reference parameter of every type, under each of its targets.
  const revIncludes = new Map<string, string[]>();
  for (const source of [...defs.resourceTypes].sort()) {
    for (const param of defs.getSearchParams(source).values()) {
      for (const target of param.type === 'reference' ? param.target : []) {
        revIncludes.set(target, [...(revIncludes.get(target) ?? []), `${source}:${param.code}`]);
      }
    }
  }
  const resources: CapabilityStatementRestResource[] = [...defs.resourceTypes].sort().map((type) => ({
    type: type as CapabilityStatementRestResource['type'],
    profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
    interaction: TYPE_INTERACTIONS.map((code) => ({ code })),
    versioning: 'versioned-update',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalRead: 'full-support', // If-None-Match and If-Modified-Since on read → 304
    conditionalUpdate: true,
    conditionalDelete: 'single',
    referencePolicy: ['literal', 'logical', 'local'],
    searchInclude: [...defs.getSearchParams(type).values()].filter((p) => p.type === 'reference').map((p) => `${type}:${p.code}`),
    ...(revIncludes.has(type) ? { searchRevInclude: revIncludes.get(type) } : {}),
    searchParam: [
      { name: '_id', type: 'token', definition: 'http://hl7.org/fhir/SearchParameter/Resource-id' },
      { name: '_lastUpdated', type: 'date', definition: 'http://hl7.org/fhir/SearchParameter/Resource-lastUpdated' },
      { name: '_content', type: 'string', definition: 'http://hl7.org/fhir/SearchParameter/Resource-content' },
      { name: '_text', type: 'string', definition: 'http://hl7.org/fhir/SearchParameter/DomainResource-text' },
      ...[...defs.getSearchParams(type).values()]
        .filter((p) => p.expression && p.code !== '_id' && p.code !== '_lastUpdated')
        .map((p) => ({ name: p.code, type: p.type, definition: p.url })),
    ],
    operation: operations.filter((op) => appliesTo(op.definition, 'type', type) || appliesTo(op.definition, 'instance', type)).map(opRef),
  }));
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: 'carelens', version: process.env.npm_package_version ?? '0.1.0' },
    implementation: { description: 'carelens FHIR R4 server', url: options.baseUrl },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    patchFormat: ['application/json-patch+json', 'application/fhir+json'], // JSON Patch, and FHIRPath Patch as Parameters
    rest: [
      {
        mode: 'server',
        // SMART App Launch 2.0 §Capability statement: where to authorize (also in .well-known/smart-configuration).
        security: {
          cors: true,
          service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }], text: 'OAuth2 using SMART-on-FHIR profile' }],
          extension: [
            {
              url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
              extension: [
                { url: 'authorize', valueUri: `${options.issuer}${AUTH_ROUTES.authorization}` },
                { url: 'token', valueUri: `${options.issuer}${AUTH_ROUTES.token}` },
                { url: 'introspect', valueUri: `${options.issuer}${AUTH_ROUTES.introspection}` },
                { url: 'revoke', valueUri: `${options.issuer}${AUTH_ROUTES.revocation}` },
              ],
            },
          ],
        },
        resource: resources,
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }, { code: 'history-system' }],
        // What a search without _type takes: the parameters every type has.
        searchParam: resources[0].searchParam!.filter((p) => resources.every((r) => r.searchParam!.some((q) => q.name === p.name && q.type === p.type))),
        operation: operations.filter((op) => op.definition.system).map(opRef),
      },
    ],
  };
}
