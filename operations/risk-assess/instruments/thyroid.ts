/** Thyroid function: TSH / free T4 interpretation against the lab's own reference intervals (ATA/ETA). */
import type { Facts } from '../../../src/risk/assessment.js';
import { type Instrument, type InstrumentResult, missingReason, SNOMED, withoutNumber } from './instrument.js';

const THYROID = { system: SNOMED, code: '14304000', display: 'Disorder of thyroid gland' };
const DEFAULT_TSH: [number, number] = [0.4, 4.0];
const DEFAULT_FT4: [number, number] = [0.8, 1.8];

type Reading = { code: string; display: string; risk: NonNullable<InstrumentResult['category']>['risk'] };

export function interpretThyroid(tsh: number, ft4: number | undefined, tshRange: [number, number], ft4Range: [number, number]): Reading {
  const [tshLow, tshHigh] = tshRange;
  const [ft4Low, ft4High] = ft4Range;
  const ft4State = ft4 === undefined ? 'unknown' : ft4 < ft4Low ? 'low' : ft4 > ft4High ? 'high' : 'normal';
  if (tsh > tshHigh && ft4State === 'low') return { code: 'overt-hypothyroidism', display: 'Overt primary hypothyroidism', risk: 'high' };
  if (tsh < 0.1 && ft4State === 'high') return { code: 'overt-hyperthyroidism', display: 'Overt hyperthyroidism', risk: 'high' };
  if (ft4State === 'low') return { code: 'central-hypothyroidism-or-nti', display: 'Low free T4 without raised TSH: central hypothyroidism or non-thyroidal illness (needs review)', risk: 'moderate' };
  if (ft4State === 'high') return { code: 'high-ft4-non-suppressed-tsh', display: 'High free T4 with non-suppressed TSH: assay interference, erratic levothyroxine, resistance or TSH-oma (needs review)', risk: 'moderate' };
  if (tsh > 10) return { code: 'subclinical-hypothyroidism', display: `Subclinical hypothyroidism, TSH >10${ft4State === 'unknown' ? ' (free T4 not measured)' : ''}`, risk: 'moderate' };
  if (tsh > tshHigh) return { code: 'mild-subclinical-hypothyroidism', display: `Mildly raised TSH${ft4State === 'unknown' ? ' (free T4 not measured)' : ' with normal free T4'}: repeat in 6–12 weeks`, risk: 'low' };
  if (tsh < 0.1) return { code: 'subclinical-hyperthyroidism-grade-2', display: `Suppressed TSH <0.1${ft4State === 'unknown' ? ' (free T4 not measured)' : ' with normal free T4'}: subclinical hyperthyroidism grade 2`, risk: 'moderate' };
  if (tsh < tshLow) return { code: 'subclinical-hyperthyroidism-grade-1', display: `Low TSH (0.1–${tshLow})${ft4State === 'unknown' ? ' (free T4 not measured)' : ' with normal free T4'}: subclinical hyperthyroidism grade 1`, risk: 'low' };
  return { code: 'euthyroid', display: 'Normal thyroid function', risk: 'negligible' };
}

export const thyroidInstrument: Instrument = {
  model: 'thyroid-tsh-ft4',
  version: 'ATA 2014/2016, ETA 2013/2015 interpretation',
  title: 'Thyroid function (TSH and free T4) interpretation',
  condition: 'thyroid',
  inputs: ['tsh', 'ft4', 'levothyroxine', 'pregnant'],
  assess(facts: Facts) {
    const tsh = facts.num('tsh');
    if (tsh === undefined) return withoutNumber('insufficient_data', THYROID, missingReason(facts));
    const ft4 = facts.has('ft4') ? facts.num('ft4') : undefined;
    const tshLab = facts.inputs.get('tsh')?.referenceRange;
    const ft4Lab = facts.inputs.get('ft4')?.referenceRange;
    const tshRange: [number, number] = [tshLab?.low ?? DEFAULT_TSH[0], tshLab?.high ?? DEFAULT_TSH[1]];
    const ft4Range: [number, number] = [ft4Lab?.low ?? DEFAULT_FT4[0], ft4Lab?.high ?? DEFAULT_FT4[1]];
    const reading = interpretThyroid(tsh, ft4, tshRange, ft4Range);
    return {
      status: 'ok',
      outcome: THYROID,
      category: { code: reading.code, display: reading.display, risk: reading.risk },
      thresholds: `TSH ${tshRange[0]}–${tshRange[1]} mIU/L, free T4 ${ft4Range[0]}–${ft4Range[1]} ng/dL (${tshLab ? "the lab's reference range" : 'typical adult range: the result carries none'}); TSH >10 (treatment generally advised under 65–70 years, ETA 2013) and <0.1 (ETA 2015 grade 2) are fixed decision levels`,
      intervalNote: 'A classification of measured values: no interval.',
      details: [{ name: 'tsh', value: tsh, unit: 'm[IU]/L' }, ...(ft4 === undefined ? [] : [{ name: 'ft4', value: ft4, unit: 'ng/dL' }])],
      warnings: [
        ...(ft4 === undefined ? ['Free T4 not measured: the interpretation rests on TSH alone'] : []),
        ...(facts.flag('levothyroxine') ? ['On thyroid treatment: this is a monitoring result, not a diagnosis'] : []),
        ...(facts.flag('pregnant') ? ['Pregnancy: use trimester-specific reference ranges'] : []),
        'Biotin, acute illness, amiodarone, lithium and recent iodinated contrast can distort results',
      ],
      mitigation: reading.code === 'euthyroid' ? undefined : 'Review with a clinician; repeat TSH with free T4 (and TPO antibodies for raised TSH).',
    };
  },
};
