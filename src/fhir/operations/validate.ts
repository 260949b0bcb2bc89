import type { Resource } from '@medplum/fhirtypes';
import { badRequest, outcomeOf } from '../outcome.js';
import { type OperationModule, paramValue } from '../operations.js';
import { validate } from '../validation.js';

/** $validate (R4 Resource-validate): reports issues, never writes. */
export const validateOperation: OperationModule = {
  definition: {
    resourceType: 'OperationDefinition',
    id: 'Resource-validate',
    url: 'http://hl7.org/fhir/OperationDefinition/Resource-validate',
    name: 'Validate',
    status: 'active',
    kind: 'operation',
    code: 'validate',
    // R4 allows the abstract type here; @medplum/fhirtypes' ResourceType list does not include it.
    resource: ['Resource' as NonNullable<OperationModule['definition']['resource']>[number]],
    system: false,
    type: true,
    instance: true,
    parameter: [
      { name: 'resource', use: 'in', min: 0, max: '1', type: 'Resource' },
      { name: 'mode', use: 'in', min: 0, max: '1', type: 'code' },
      { name: 'profile', use: 'in', min: 0, max: '1', type: 'uri' },
      { name: 'return', use: 'out', min: 1, max: '1', type: 'OperationOutcome' },
    ],
  },
  async handler(ctx) {
    const resource = (paramValue(ctx.params, 'resource') as Resource | undefined) ?? ctx.bodyResource;
    const mode = paramValue(ctx.params, 'mode') as string | undefined;
    const profile = paramValue(ctx.params, 'profile') as string | undefined;
    if (mode && !['create', 'update', 'delete', 'profile'].includes(mode)) {
      throw badRequest(`mode must be create, update, delete or profile, got "${mode}"`, 'mode');
    }
    if (mode === 'delete') {
      // Nothing prevents deletion here: no referential integrity is enforced on delete.
      return outcomeOf([{ severity: 'information', code: 'informational', details: { text: 'The resource can be deleted' } }]);
    }
    if (!resource) {
      throw badRequest('$validate needs a resource: POST it as the body or in a "resource" parameter');
    }
    if (ctx.resourceType && resource.resourceType !== ctx.resourceType) {
      throw badRequest(`$validate on ${ctx.resourceType} received a ${resource.resourceType}`, 'resourceType');
    }
    if (mode === 'update' && ctx.id && resource.id !== ctx.id) {
      throw badRequest(`The resource id "${resource.id}" does not match the id in the URL "${ctx.id}"`, 'id');
    }
    const issues = validate(ctx.router.defs, resource, { profile, unknownProfile: 'error' });
    return outcomeOf(issues.length > 0 ? issues : [{ severity: 'information', code: 'informational', details: { text: 'All OK' } }]);
  },
};
