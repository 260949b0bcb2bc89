import { type Card, type CdsContext, recordOf } from '../../src/cds/cds-hooks.js';
import { draftServiceRequests, duplicateCards } from '../order-checks.js';

/** order-sign: duplicate checks on every draft order about to be signed. */
export async function handler({ request, data }: CdsContext): Promise<Card[]> {
  const record = recordOf(data);
  if (!record) return [];
  return duplicateCards(draftServiceRequests(request.context.draftOrders), record);
}
