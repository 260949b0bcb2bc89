import { type Card, type CdsContext, newCard, recordOf } from '../../src/cds/cds-hooks.js';
import { resolveInputs } from '../../src/risk/inputs.js';
import { presentationOf, TRIAGE_INPUTS } from '../../operations/triage/handler.js';
import { triage } from '../../operations/triage/triage.js';

const INDICATOR = { RED: 'critical', AMBER: 'warning', GREEN: 'info' } as const;

/** encounter-start: $triage over the prefetched vital signs (last 24 hours) and conditions. */
export async function handler({ data }: CdsContext): Promise<Card[]> {
  const record = recordOf(data);
  if (!record) return [];
  const inputs = resolveInputs(TRIAGE_INPUTS, record, { asOf: new Date(), lookbackDays: 1 });
  const presentation = presentationOf({ resourceType: 'Parameters' }, inputs);
  if (presentation.values.size === 0) return [];
  const result = triage(presentation);
  const news2 = result.news2.components.length > 0 ? ` — NEWS2 ${result.news2.total} (${result.news2.band})` : '';
  return [
    newCard({
      summary: `Triage ${result.urgency}${news2}: ${result.timeToAction}`.slice(0, 140),
      detail: [
        ...result.fired.map((f) => `- **${f.rule.message}** (${f.rule.source})${f.evidence.length ? `: ${f.evidence.join(', ')}` : ''}`),
        result.news2.components.length > 0 ? `NEWS2 response: ${result.news2.response}` : undefined,
        result.specialties.length > 0 ? `Refer: ${result.specialties.join('; ')}` : undefined,
        ...result.warnings.map((w) => `_${w}_`),
      ].filter(Boolean).join('\n'),
      indicator: INDICATOR[result.urgency],
      source: { label: 'carelens triage (RCP NEWS2, NICE red flags)', topic: { system: 'https://carelens.dev/fhir/CodeSystem/triage-urgency', code: result.urgency } },
    }),
  ];
}
