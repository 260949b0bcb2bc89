import { type Card, type CdsContext, recordOf } from '../../src/cds/cds-hooks.js';
import { draftServiceRequests, duplicateCards, overdueCards } from '../order-checks.js';

/** order-select: duplicate checks on the selected orders; overdue monitoring the draft orders miss. */
export async function handler({ request, data }: CdsContext): Promise<Card[]> {
  const record = recordOf(data);
  if (!record) return [];
  const all = draftServiceRequests(request.context.draftOrders);
  return [...duplicateCards(draftServiceRequests(request.context.draftOrders, request.context.selections ?? []), record), ...overdueCards(all, record)];
}
