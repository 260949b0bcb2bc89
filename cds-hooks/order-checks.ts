/**
 * Order checks shared by the order-select and order-sign services: draft ServiceRequests for a test
 * already resulted within its minimum retest interval, or ordered twice; and tests overdue for the
 * patient's conditions that no draft order covers.
 */
import type { Bundle, ServiceRequest } from '@medplum/fhirtypes';
import { type Card, newCard } from '../src/cds/cds-hooks.js';
import { latestObservation, observationDate, type PatientRecord } from '../src/risk/patient-record.js';
import { resolveInput } from '../src/risk/inputs.js';
import { catalogueSpec } from '../operations/risk-assess/engine.js';
import intervals from './retest-intervals.json' with { type: 'json' };

const LOINC = 'http://loinc.org';
const DAY = 86_400_000;
const OVERRIDES = [
  { code: 'clinically-indicated', system: 'https://carelens.dev/fhir/CodeSystem/cds-override', display: 'Clinically indicated despite the recent result' },
  { code: 'result-not-available', system: 'https://carelens.dev/fhir/CodeSystem/cds-override', display: 'The earlier result is not available to the treating team' },
];

export function draftServiceRequests(draftOrders: Bundle | undefined, selections?: readonly string[]): (ServiceRequest & { id: string })[] {
  const all = (draftOrders?.entry ?? []).map((e) => e.resource).filter((r): r is ServiceRequest & { id: string } => r?.resourceType === 'ServiceRequest' && typeof r.id === 'string');
  return selections ? all.filter((r) => selections.includes(`ServiceRequest/${r.id}`)) : all;
}

export function duplicateCards(orders: readonly (ServiceRequest & { id: string })[], record: PatientRecord, now = new Date()): Card[] {
  const cards: Card[] = [];
  const seen = new Map<string, string>();
  for (const order of orders) {
    const codes = (order.code?.coding ?? []).filter((c) => c.system === LOINC).map((c) => c.code!);
    const test = intervals.tests.find((t) => t.orderCodes.some((c) => codes.includes(c)));
    if (!test) continue;
    const earlierDraft = seen.get(test.display);
    seen.set(test.display, order.id);
    const recent = latestObservation(record, test.resultCodes);
    const ageDays = recent ? Math.floor((now.getTime() - Date.parse(observationDate(recent)!)) / DAY) : undefined;
    const duplicateOfResult = ageDays !== undefined && ageDays < test.days;
    if (!duplicateOfResult && !earlierDraft) continue;
    const value = recent?.valueQuantity ? ` (${recent.valueQuantity.value} ${recent.valueQuantity.unit ?? recent.valueQuantity.code ?? ''})`.replace(' )', ')') : '';
    cards.push(
      newCard({
        summary: (duplicateOfResult
          ? `Possible duplicate: ${test.display} resulted ${ageDays} days ago${value}`
          : `${test.display} is ordered twice in this session`).slice(0, 140),
        detail: duplicateOfResult
          ? `The minimum retest interval for ${test.display} is ${test.days} days; the last result is from ${observationDate(recent!)!.slice(0, 10)}.`
          : `ServiceRequest/${earlierDraft} already orders ${test.display}.`,
        indicator: 'warning',
        source: { label: 'carelens order checks (minimum retest intervals)' },
        suggestions: [{ label: `Remove the ${test.display} order`, uuid: crypto.randomUUID(), isRecommended: true, actions: [{ type: 'delete', description: `Remove the duplicate ${test.display} order`, resourceId: `ServiceRequest/${order.id}` }] }],
        selectionBehavior: 'at-most-one',
        overrideReasons: OVERRIDES,
      }),
    );
  }
  return cards;
}

export function overdueCards(orders: readonly ServiceRequest[], record: PatientRecord, now = new Date()): Card[] {
  const cards: Card[] = [];
  const hasDiabetes = resolveInput(catalogueSpec('diabetes'), record, { asOf: now, lookbackDays: 36_500 }).value === 1;
  for (const rule of intervals.overdue) {
    if (rule.when === 'diabetes' && !hasDiabetes) continue;
    if (orders.some((o) => o.code?.coding?.some((c) => c.system === LOINC && rule.resultCodes.includes(c.code!)))) continue;
    const recent = latestObservation(record, rule.resultCodes);
    const ageDays = recent ? Math.floor((now.getTime() - Date.parse(observationDate(recent)!)) / DAY) : undefined;
    if (ageDays !== undefined && ageDays <= rule.days) continue;
    const proposal: ServiceRequest = {
      resourceType: 'ServiceRequest',
      status: 'draft',
      intent: 'proposal',
      code: { coding: [{ system: LOINC, code: rule.code, display: rule.display }], text: rule.display },
      subject: { reference: `Patient/${record.patient.id}` },
    };
    cards.push(
      newCard({
        summary: `${rule.display} overdue: ${ageDays === undefined ? 'no result on record' : `last result ${ageDays} days ago`}`.slice(0, 140),
        detail: `${rule.source}.`,
        indicator: 'info',
        source: { label: 'carelens order checks (monitoring intervals)' },
        suggestions: [{ label: `Add a ${rule.display} order`, uuid: crypto.randomUUID(), actions: [{ type: 'create', description: `Order ${rule.display}`, resource: proposal }] }],
        selectionBehavior: 'at-most-one',
      }),
    );
  }
  return cards;
}
