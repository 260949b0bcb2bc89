import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { f1, scoreDocument, truthDocuments } from '../bench/extract.js';
import { DocumentRejected, type DocumentText, type TextLine, type TextWord } from '../src/documents/document-text.js';
import { allAnalytes, codeForUnit, lookupLabel, matchLabel } from '../src/documents/lab-analytes.js';
import { parseLabResults } from '../src/documents/lab-parser.js';
import { readPdfText } from '../src/documents/pdf-text.js';
import { convertUnit, parseUnit, unitCandidates } from '../src/documents/units.js';

/** A line of words laid out left to right; `cells` separated by wide gaps, words within by one space. */
function line(y: number, cells: string[], confidence = 1): TextLine {
  const words: TextWord[] = [];
  let x = 40;
  for (const cell of cells) {
    for (const text of cell.split(' ')) {
      words.push({ text, x, y, width: text.length * 5, height: 9, confidence });
      x += text.length * 5 + 3;
    }
    x += 60;
  }
  const right = words.at(-1)!.x + words.at(-1)!.width;
  return { text: words.map((w) => w.text).join(' '), x: 40, y, width: right - 40, height: 9, confidence, words };
}

function page(lines: TextLine[], method: DocumentText['method'] = 'pdf-text'): DocumentText {
  return { method, pages: [{ number: 1, width: 612, height: 792, method, lines }] };
}

describe('units', () => {
  test('printed spellings map to UCUM', () => {
    expect(parseUnit('mg/dl')).toBe('mg/dL');
    expect(parseUnit('10^9/L')).toBe('10*9/L');
    expect(parseUnit('x10E3/uL')).toBe('10*3/uL');
    expect(parseUnit('×10⁹/L')).toBe('10*9/L');
    expect(parseUnit('µmol/L')).toBe('umol/L');
    expect(parseUnit('μmol/L')).toBe('umol/L');
    expect(parseUnit('IU/L')).toBe('[IU]/L');
    expect(parseUnit('mIU/L')).toBe('m[IU]/L');
    expect(parseUnit('uIU/mL')).toBe('u[IU]/mL');
    expect(parseUnit('mL/min/1.73m²')).toBe('mL/min/{1.73_m2}');
    expect(parseUnit('mL/min/1.73 m2')).toBe('mL/min/{1.73_m2}');
    expect(parseUnit('1079/L')).toBe('10*9/L');
    expect(parseUnit('Negative')).toBeUndefined();
  });

  test('OCR-garbled units yield candidate readings', () => {
    expect(unitCandidates('x10°%L')).toEqual(['10*9/L', '10*12/L']);
    expect(unitCandidates('pmol/L')).toEqual(['pmol/L', 'umol/L']);
    expect(unitCandidates('UL')).toContain('U/L');
    expect(unitCandidates('ma/L')).toContain('mg/L');
  });

  test('glucose 90 mg/dL is 4.995 mmol/L (molar mass 180.16)', () => {
    expect(convertUnit(90, 'mg/dL', 'mmol/L', { molarMass: 180.16 })).toBeCloseTo(4.9956, 3);
  });

  test('creatinine 1.0 mg/dL is 88.4 µmol/L', () => {
    expect(convertUnit(1, 'mg/dL', 'umol/L', { molarMass: 113.12 })).toBeCloseTo(88.4, 1);
  });

  test('factor-of-ten units', () => {
    expect(convertUnit(13.5, 'g/dL', 'g/L')).toBeCloseTo(135, 9);
    expect(convertUnit(6.6, '10*3/uL', '10*9/L')).toBeCloseTo(6.6, 9);
    expect(convertUnit(4.5, '10*6/uL', '10*12/L')).toBeCloseTo(4.5, 9);
    expect(convertUnit(250, '10*9/L', '/uL')).toBeCloseTo(250000, 6);
    expect(convertUnit(0.44, 'L/L', '%')).toBeCloseTo(44, 9);
  });

  test('HbA1c 6.5 % is 48 mmol/mol (IFCC–NGSP master equation) and back', () => {
    expect(Math.round(convertUnit(6.5, '%', 'mmol/mol', { hba1c: true })!)).toBe(48);
    expect(convertUnit(48, 'mmol/mol', '%', { hba1c: true })).toBeCloseTo(6.54, 2);
  });

  test('albumin/creatinine ratio 30 mg/g is 3.39 mg/mmol', () => {
    expect(convertUnit(30, 'mg/g', 'mg/mmol', { denominatorMolarMass: 113.12 })).toBeCloseTo(3.39, 2);
  });

  test('no conversion without a molar mass or across dimensions', () => {
    expect(convertUnit(90, 'mg/dL', 'mmol/L')).toBeUndefined();
    expect(convertUnit(5, '%', '10*9/L')).toBeUndefined();
  });
});

describe('analyte table', () => {
  test('every entry has a well-formed LOINC code and unique id', () => {
    const ids = new Set<string>();
    for (const analyte of allAnalytes()) {
      expect(analyte.loinc).toMatch(/^\d{1,6}-\d$/);
      expect(ids.has(analyte.id)).toBe(false);
      ids.add(analyte.id);
    }
  });

  test('labels resolve despite case, punctuation, qualifiers and OCR misreads', () => {
    const id = (label: string): string[] | undefined => lookupLabel(label)?.map((a) => a.id);
    expect(id('Creatinine, Serum')).toEqual(['creatinine']);
    expect(id('GLUCOSE')).toEqual(['glucose']);
    expect(id('ALT (SGPT)')).toEqual(['alt']);
    expect(id('HbAlc')).toEqual(['hba1c']);
    expect(id('Hemoglobin Alc')).toEqual(['hba1c']);
    expect(id('eGFR (CKD-EPI 2021)')).toEqual(['egfr']);
    expect(id('Neutrophils %')).toEqual(['neutrophils-pct']);
    expect(id('Neutrophils')?.sort()).toEqual(['neutrophils-abs', 'neutrophils-pct']);
    expect(matchLabel('Triglycerdes')?.analytes.map((a) => a.id)).toEqual(['triglycerides']);
    expect(matchLabel('Patient')).toBeUndefined();
  });

  test('LOINC code follows the unit where LOINC distinguishes mass and moles', () => {
    const glucose = lookupLabel('Glucose')![0];
    expect(codeForUnit(glucose, 'mg/dL')?.loinc).toBe('2345-7');
    expect(codeForUnit(glucose, 'mmol/L')?.loinc).toBe('15074-8');
    expect(codeForUnit(glucose, '%')).toBeUndefined();
  });
});

describe('parseLabResults', () => {
  test('table row with flag, unit and range', () => {
    const report = parseLabResults(page([line(100, ['LDL Cholesterol (calc)', '106', 'H', 'mg/dL', '<100'])]));
    expect(report.results).toHaveLength(1);
    expect(report.results[0]).toMatchObject({
      loinc: '13457-7',
      value: 106,
      unit: 'mg/dL',
      ucum: 'mg/dL',
      flag: 'H',
      referenceRange: { high: 100, text: '<100' },
      plausible: true,
    });
    expect(report.results[0].normalized?.ucum).toBe('mmol/L');
    expect(report.results[0].normalized?.value).toBeCloseTo(2.7415, 3);
  });

  test('free-text line with comparator value and reference text', () => {
    const [result] = parseLabResults(page([line(100, ['CRP: <0.5 mg/L (Reference: <5.0)'])])).results;
    expect(result).toMatchObject({ loinc: '1988-5', value: 0.5, comparator: '<', ucum: 'mg/L', referenceRange: { high: 5 } });
  });

  test('unit decides between differential percentage and absolute count', () => {
    const results = parseLabResults(page([line(100, ['Neutrophils', '61.6', '%', '40.0-75.0']), line(115, ['Neutrophils', '4.38', 'x10^9/L', '1.80-7.70'])])).results;
    expect(results.map((r) => r.loinc)).toEqual(['770-8', '751-8']);
  });

  test('two results on one row of side-by-side tables', () => {
    const results = parseLabResults(page([line(100, ['WBC', '10.0', '10^3/μL', '(4.0-11.0)', 'Creatinine', '0.85', 'mg/dL', '(0.74-1.35)'])])).results;
    expect(results.map((r) => [r.loinc, r.value, r.ucum])).toEqual([
      ['6690-2', 10, '10*3/uL'],
      ['2160-0', 0.85, 'mg/dL'],
    ]);
  });

  test('cumulative table takes the most recent date column', () => {
    const results = parseLabResults(
      page([line(90, ['Test', '2024-07-02', '2024-12-09']), line(100, ['Glucose', '105 H', '116 H', 'mg/dL', '70-99'])]),
    ).results;
    expect(results[0]).toMatchObject({ value: 116 });
  });

  test('headers, addresses and comment prose produce no results', () => {
    const report = parseLabResults(
      page([
        line(50, ['Collected: 03/05/2024 08:19', 'Reported: 03/06/2024']),
        line(60, ['4410 Harlow Parkway, Suite 200']),
        line(70, ['TEST', 'RESULT', 'FLAG', 'UNITS', 'REFERENCE INTERVAL']),
        line(80, ['triglycerides exceed 400 mg/dL.']),
        line(90, ['Glucose: 2+']),
        line(100, ['Protein: Negative']),
        line(110, ['Glucose', '75', 'mg/dL', '70-99']),
      ]),
    );
    expect(report.results.map((r) => r.loinc)).toEqual(['2345-7']);
    // mg/dL marks a US report, so 03/05 is month first.
    expect(report.specimenDate).toBe('2024-03-05');
    expect(report.reportDate).toBe('2024-03-06');
  });

  test('OCR misreads are repaired where range and plausibility agree', () => {
    const results = parseLabResults(
      page([line(100, ['HbAlc', '48', '%', '40-56'], 0.8), line(115, ['White cell count', '7.1', '1079/L', '4.0-11.0'], 0.8)], 'tesseract'),
    ).results;
    expect(results[0]).toMatchObject({ loinc: '4548-4', value: 4.8, referenceRange: { low: 4, high: 5.6 } });
    expect(results[0].confidence).toBeLessThan(0.8);
    expect(results[1]).toMatchObject({ loinc: '6690-2', value: 7.1, ucum: '10*9/L' });
  });

  test('dimensionless urinalysis values need no unit', () => {
    const [result] = parseLabResults(page([line(100, ['Sp. Gravity: 1.018 (Reference: 1.005 - 1.030)'])])).results;
    expect(result).toMatchObject({ loinc: '5811-5', value: 1.018, ucum: '1' });
  });
});

describe('readPdfText', () => {
  test('corrupt bytes are rejected with a typed error', async () => {
    const bytes = new TextEncoder().encode('%PDF-1.7\nthis is not really a PDF\n%%EOF');
    await expect(readPdfText(bytes)).rejects.toBeInstanceOf(DocumentRejected);
  });
});

const LAB_REPORTS = resolve('../shared/data/lab-reports');

describe('accuracy on ../shared/data/lab-reports digital PDFs', () => {
  const present = existsSync(LAB_REPORTS);
  if (!present) console.log(`skipping accuracy test: ${LAB_REPORTS} does not exist`);
  (present ? test : test.skip)('F1 of (LOINC, value, unit) triples ≥ 0.97', async () => {
    const documents = (await truthDocuments(LAB_REPORTS)).filter((d) => d.truth.kind === 'digital-pdf');
    expect(documents.length).toBeGreaterThan(0);
    const total = { truth: 0, predicted: 0, matched: 0 };
    for (const document of documents) {
      const pdf = await readPdfText(new Uint8Array(await readFile(join(document.path))));
      const pages = pdf.pages.flatMap((p) => (p.hasText ? [p] : []));
      const score = scoreDocument(parseLabResults({ method: 'pdf-text', pages }).results, document.truth.results);
      total.truth += score.truth;
      total.predicted += score.predicted;
      total.matched += score.matched;
    }
    expect(f1(total).f1).toBeGreaterThanOrEqual(0.97);
  });
});
