import { type Card, type CdsContext, newCard, recordOf } from '../../src/cds/cds-hooks.js';
import { CONDITION_DISPLAY, CONDITIONS, type ConditionCode } from '../../operations/risk-assess/conditions.js';
import { assessRecords } from '../../operations/risk-assess/engine.js';

/** patient-view: the $risk-assess engine over the prefetched record; published instruments only. */
export async function handler({ data, platform, origin }: CdsContext): Promise<Card[]> {
  const record = recordOf(data);
  if (!record) return [];
  const [result] = await assessRecords(platform.models, [record], { conditions: CONDITIONS, asOf: new Date(), lookbackDays: 730, explain: false });
  const cards: Card[] = [];
  const gaps = new Set<string>();
  for (const condition of CONDITIONS) {
    const published = result.assessments.filter((a) => a.condition === condition && !a.researchGrade);
    const primary = published.find((a) => a.status === 'ok');
    if (!primary) {
      const first = published[0];
      if (first?.status === 'insufficient_data') first.missing.forEach((m) => gaps.add(m));
      continue;
    }
    const risk = primary.category?.risk;
    if (risk !== 'high' && risk !== 'moderate') continue;
    const number = primary.probability !== undefined ? ` ${(primary.probability * 100).toFixed(1)}%${primary.horizonYears ? ` over ${primary.horizonYears} y` : ''}` : primary.score ? ` ${primary.score.display} ${primary.score.value}` : '';
    cards.push(
      newCard({
        summary: truncate(`${CONDITION_DISPLAY[condition as ConditionCode]}: ${primary.category!.display}${number}`),
        detail: [
          `**${primary.title}** (${primary.version})`,
          primary.thresholds ? `Thresholds: ${primary.thresholds}` : undefined,
          primary.mitigation ? `Suggested: ${primary.mitigation}` : undefined,
          ...primary.warnings.map((w) => `- ${w}`),
        ].filter(Boolean).join('\n\n'),
        indicator: risk === 'high' ? 'warning' : 'info',
        source: { label: `carelens risk engine: ${primary.title}`, url: `${origin}/models/${primary.model}`, topic: { system: 'https://carelens.dev/fhir/CodeSystem/risk-condition', code: condition } },
        links: [{ label: `Model card: ${primary.title}`, url: `${origin}/models/${primary.model}`, type: 'absolute' }],
      }),
    );
  }
  if (gaps.size > 0) {
    cards.push(
      newCard({
        summary: truncate(`Care gap: no recent ${[...gaps].slice(0, 6).join(', ')} — some risks cannot be assessed`),
        detail: `Missing inputs for the published risk instruments: ${[...gaps].join(', ')}.`,
        indicator: 'info',
        source: { label: 'carelens risk engine' },
      }),
    );
  }
  return cards;
}

function truncate(summary: string): string {
  return summary.length <= 140 ? summary : `${summary.slice(0, 139)}…`;
}
