/**
 * Breast cancer: rule-based markers. Symptoms that meet NICE NG12 suspected-cancer referral criteria
 * and high-penetrance risk factors are high; moderate risk factors are medium; otherwise low.
 */
import type { Facts } from '../../../src/risk/assessment.js';
import { type Instrument, missingReason, SNOMED, withoutNumber } from './instrument.js';

const BREAST_CANCER = { system: SNOMED, code: '254837009', display: 'Malignant neoplasm of breast' };

/** Each marker: the input that raises it, its level and the reason shown. Rules are data. */
const MARKERS: { input: string; level: 'high' | 'medium'; when?: string; reason: string }[] = [
  { input: 'breast_lump', level: 'high', reason: 'New hard breast lump (NICE NG12: suspected-cancer pathway referral at 30 and over)' },
  { input: 'bloody_nipple_discharge', level: 'high', reason: 'Bloody nipple discharge' },
  { input: 'skin_dimpling', level: 'high', reason: "Skin dimpling or peau d'orange (NICE NG12: skin changes suggestive of cancer)" },
  { input: 'rapidly_growing_mass', level: 'high', reason: 'Rapidly growing breast mass' },
  { input: 'nipple_retraction', level: 'high', reason: 'New nipple retraction (NICE NG12 at 50 and over, one nipple)' },
  { input: 'axillary_lump', level: 'high', reason: 'Unexplained axillary lump (NICE NG12: consider referral at 30 and over)' },
  { input: 'family_breast', level: 'high', when: 'strong', reason: 'Strong family history of breast cancer' },
  { input: 'brca', level: 'high', reason: 'Known BRCA1/2 mutation' },
  { input: 'chest_radiation', level: 'high', reason: 'Prior chest radiation' },
  { input: 'breast_cancer_history', level: 'high', reason: 'Prior breast cancer' },
  { input: 'breast_pain_localized', level: 'medium', reason: 'Localized breast pain' },
  { input: 'family_breast', level: 'medium', when: 'second-degree', reason: 'Second-degree family history of breast cancer' },
  { input: 'family_breast', level: 'medium', when: 'first-degree', reason: 'First-degree family history of breast cancer' },
  { input: 'dense_breasts', level: 'medium', reason: 'Dense breasts' },
  { input: 'hormonal_risk', level: 'medium', reason: 'Hormonal risk factors' },
  { input: 'benign_breast_disease', level: 'medium', reason: 'Prior benign breast disease' },
];
const SYMPTOM_INPUTS = ['breast_lump', 'bloody_nipple_discharge', 'skin_dimpling', 'rapidly_growing_mass', 'nipple_retraction'];

export const breastMarkers: Instrument = {
  model: 'breast-markers',
  version: '1.0 (NICE NG12 breast criteria and risk-factor markers)',
  title: 'Breast cancer risk markers (rule-based)',
  condition: 'breast-cancer',
  inputs: [...new Set(MARKERS.map((m) => m.input)), 'breast_pain_cyclical', 'screening_up_to_date', 'age'],
  assess(facts: Facts) {
    // A marker counts as known when a record entry gave it (an unmatched diagnosis search gives 0 from nothing).
    const answered = MARKERS.some((m) => (facts.inputs.get(m.input)?.basis.length ?? 0) > 0);
    if (!answered) {
      SYMPTOM_INPUTS.forEach((name) => facts.missing.add(name));
      return withoutNumber('insufficient_data', BREAST_CANCER, `${missingReason(facts)} (no breast symptom or risk-factor answers are recorded)`);
    }
    const fired = MARKERS.filter((m) => {
      const value = facts.inputs.get(m.input)?.value;
      return m.when === undefined ? value === 1 || value === 'yes' : value === m.when;
    });
    const level = fired.some((m) => m.level === 'high') ? 'high' : fired.some((m) => m.level === 'medium') ? 'medium' : 'low';
    const lowReasons = [
      ...(facts.inputs.get('breast_pain_cyclical')?.value === 1 ? ['Cyclical breast pain only'] : []),
      ...(facts.inputs.get('screening_up_to_date')?.value === 1 ? ['Screening up to date'] : []),
    ];
    const age = facts.inputs.get('age')?.value;
    const symptomatic = fired.some((m) => SYMPTOM_INPUTS.includes(m.input) || m.input === 'axillary_lump');
    return {
      status: 'ok',
      outcome: BREAST_CANCER,
      category: {
        code: level,
        display: level === 'high' ? 'High: refer for specialist assessment' : level === 'medium' ? 'Medium: clinical review and risk-appropriate screening' : 'Low: routine screening',
        risk: level === 'high' ? 'high' : level === 'medium' ? 'moderate' : 'low',
      },
      thresholds: 'high if any high marker; medium if any medium marker; otherwise low',
      intervalNote: 'A rule-based classification: no probability and no interval.',
      details: [...fired.map((m) => ({ name: `${m.level}-marker`, value: m.reason })), ...lowReasons.map((r) => ({ name: 'low-marker', value: r }))],
      warnings: [
        ...(symptomatic && typeof age === 'number' && age < 30 ? ['Under 30 with a breast lump: NICE NG12 advises considering non-urgent referral'] : []),
        'Markers flag who needs assessment; they are not a probability of cancer',
      ],
      mitigation: symptomatic ? 'Suspected-cancer pathway referral (appointment within 2 weeks) per NICE NG12.' : level === 'high' ? 'Refer to a family-history / high-risk breast clinic for risk assessment and surveillance.' : level === 'medium' ? 'Clinical review; consider earlier or supplemental screening.' : 'Continue routine screening.',
    };
  },
};
