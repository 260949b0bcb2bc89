/**
 * Turns a patient's resources into retrievable chunks: each structured resource becomes one short
 * dated sentence plus the fact it states (so answers quote values exactly, never paraphrase them);
 * each document or report text is cut at its section headings and then into passages of bounded
 * length, every passage keeping its document's title, section and date.
 */
import type {
  AllergyIntolerance,
  Attachment,
  CodeableConcept,
  Condition,
  DiagnosticReport,
  DocumentReference,
  Encounter,
  Immunization,
  MedicationRequest,
  MedicationStatement,
  Observation,
  ObservationReferenceRange,
  Procedure,
  Quantity,
  Resource,
} from '@medplum/fhirtypes';
import { observationDate } from '../risk/patient-record.js';

/** The resource types the index is built from. */
export const SOURCE_TYPES = [
  'Observation',
  'Condition',
  'MedicationRequest',
  'MedicationStatement',
  'Encounter',
  'Procedure',
  'Immunization',
  'AllergyIntolerance',
  'DiagnosticReport',
  'DocumentReference',
] as const;

/** Observations carelens itself derives from the record (the health score): indexing them would make every refresh trigger another. */
const DERIVED_SYSTEMS = new Set(['https://carelens.dev/fhir/CodeSystem/health-score']);

export type Fact =
  | { type: 'result'; name: string; value: string; numeric?: number; unit?: string; range?: string; flag?: 'low' | 'high' | 'normal' | 'abnormal'; status: string }
  | { type: 'condition'; name: string; clinicalStatus?: string; onset?: string; abatement?: string }
  | { type: 'medication'; name: string; status: string; dosage?: string }
  | { type: 'encounter'; name: string; reason?: string }
  | { type: 'procedure'; name: string; status: string }
  | { type: 'immunization'; name: string; status: string }
  | { type: 'allergy'; name: string; reaction?: string; criticality?: string }
  | { type: 'report'; name: string; conclusion?: string };

export interface ChunkDraft {
  /** The source's resource type, or "document" for a passage of document or report text. */
  kind: string;
  /** How a citation names the source: the test, condition or document title. */
  title: string;
  section?: string;
  /** ISO date (or date-time) the chunk is about. */
  date?: string;
  content: string;
  fact?: Fact;
}

/** Whether a resource feeds the index (and so whether writing it calls for a refresh). */
export function isIndexedSource(resource: Resource): boolean {
  if (!(SOURCE_TYPES as readonly string[]).includes(resource.resourceType)) return false;
  if (resource.resourceType === 'Observation') {
    return !(resource.code?.coding ?? []).some((c) => DERIVED_SYSTEMS.has(c.system ?? ''));
  }
  return true;
}

/** The chunks of one resource; `documentText` is the text extracted from a DocumentReference's PDF or image, when there is some. */
export function renderChunks(resource: Resource, documentText?: string): ChunkDraft[] {
  switch (resource.resourceType) {
    case 'Observation':
      return [observationChunk(resource)];
    case 'Condition':
      return [conditionChunk(resource)];
    case 'MedicationRequest':
    case 'MedicationStatement':
      return [medicationChunk(resource)];
    case 'Encounter':
      return [encounterChunk(resource)];
    case 'Procedure':
      return [procedureChunk(resource)];
    case 'Immunization':
      return [immunizationChunk(resource)];
    case 'AllergyIntolerance':
      return [allergyChunk(resource)];
    case 'DiagnosticReport':
      return reportChunks(resource);
    case 'DocumentReference':
      return documentChunks(resource, documentText);
    default:
      return [];
  }
}

/** "6 Mar 2020": the calendar date as written in the record (its own time zone, not the server's). */
export function formatDate(iso: string | undefined): string {
  const m = /^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?/.exec(iso ?? '');
  if (!m) return 'an unknown date';
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  if (!m[2]) return m[1];
  if (!m[3]) return `${months[Number(m[2]) - 1]} ${m[1]}`;
  return `${Number(m[3])} ${months[Number(m[2]) - 1]} ${m[1]}`;
}

/** A name without SNOMED CT's semantic tag ("Cough (finding)" → "Cough"): the tag means nothing to a patient. */
export function withoutSemanticTag(name: string): string {
  return name.replace(/\s*\((finding|disorder|procedure|situation|regime\/therapy|qualifier value|observable entity|record artifact|morphologic abnormality)\)/g, '');
}

export function conceptText(concept: CodeableConcept | undefined): string | undefined {
  return concept?.text ?? concept?.coding?.find((c) => c.display)?.display ?? concept?.coding?.[0]?.code;
}

function observationChunk(o: Observation): ChunkDraft {
  const name = conceptText(o.code) ?? 'Observation';
  const date = observationDate(o);
  const parts = o.component?.length
    ? o.component.map((c) => `${conceptText(c.code) ?? 'component'} ${valueText(c) ?? 'not recorded'}`)
    : [valueText(o) ?? (o.dataAbsentReason ? `not available (${conceptText(o.dataAbsentReason)})` : 'no value recorded')];
  const value = parts.join(', ');
  const range = rangeText(o.referenceRange?.[0], o.valueQuantity?.unit);
  const flag = o.component?.length ? undefined : interpretation(o);
  const category = conceptText(o.category?.[0]);
  const fact: Fact = {
    type: 'result',
    name,
    value,
    ...(o.valueQuantity?.value !== undefined ? { numeric: o.valueQuantity.value, unit: o.valueQuantity.unit ?? o.valueQuantity.code } : {}),
    ...(range ? { range } : {}),
    ...(flag ? { flag } : {}),
    status: o.status,
  };
  const content =
    `${name}: ${value}` +
    (range ? ` (reference range ${range})` : '') +
    (flag && flag !== 'normal' ? `, ${flag}` : '') +
    ` on ${formatDate(date)}.` +
    (category ? ` ${capitalise(category)} result.` : '') +
    (o.status !== 'final' && o.status !== 'amended' && o.status !== 'corrected' ? ` Status: ${o.status}.` : '') +
    noteText(o.note);
  return { kind: 'Observation', title: name, date, content, fact };
}

function valueText(o: {
  valueQuantity?: Quantity;
  valueCodeableConcept?: CodeableConcept;
  valueString?: string;
  valueBoolean?: boolean;
  valueInteger?: number;
  valueRange?: { low?: Quantity; high?: Quantity };
  valueDateTime?: string;
}): string | undefined {
  if (o.valueQuantity?.value !== undefined) return `${o.valueQuantity.value}${unitText(o.valueQuantity.unit ?? o.valueQuantity.code)}`;
  if (o.valueCodeableConcept) return conceptText(o.valueCodeableConcept);
  if (o.valueString !== undefined) return o.valueString;
  if (o.valueBoolean !== undefined) return o.valueBoolean ? 'yes' : 'no';
  if (o.valueInteger !== undefined) return String(o.valueInteger);
  if (o.valueDateTime) return formatDate(o.valueDateTime);
  if (o.valueRange) return `${o.valueRange.low?.value ?? '?'}–${o.valueRange.high?.value ?? '?'}${unitText(o.valueRange.high?.unit ?? o.valueRange.low?.unit)}`;
  return undefined;
}

function unitText(unit: string | undefined): string {
  if (!unit || unit === '1' || unit === '{score}') return '';
  return unit === '%' ? '%' : ` ${unit}`;
}

function rangeText(range: ObservationReferenceRange | undefined, unit: string | undefined): string | undefined {
  if (!range) return undefined;
  if (range.text && range.low?.value === undefined && range.high?.value === undefined) return range.text;
  const u = unitText(range.low?.unit ?? range.high?.unit ?? unit);
  if (range.low?.value !== undefined && range.high?.value !== undefined) return `${range.low.value}–${range.high.value}${u}`;
  if (range.low?.value !== undefined) return `above ${range.low.value}${u}`;
  if (range.high?.value !== undefined) return `below ${range.high.value}${u}`;
  return undefined;
}

function interpretation(o: Observation): 'low' | 'high' | 'normal' | 'abnormal' | undefined {
  const code = o.interpretation?.[0]?.coding?.find((c) => c.code)?.code;
  if (code) {
    if (['H', 'HH', 'HU', '>'].includes(code)) return 'high';
    if (['L', 'LL', 'LU', '<'].includes(code)) return 'low';
    if (code === 'N') return 'normal';
    if (['A', 'AA', 'POS', 'DET'].includes(code)) return 'abnormal';
  }
  const value = o.valueQuantity?.value;
  const range = o.referenceRange?.[0];
  if (value === undefined || !range) return undefined;
  if (range.low?.value !== undefined && value < range.low.value) return 'low';
  if (range.high?.value !== undefined && value > range.high.value) return 'high';
  return range.low?.value !== undefined || range.high?.value !== undefined ? 'normal' : undefined;
}

function conditionChunk(c: Condition): ChunkDraft {
  const name = conceptText(c.code) ?? 'Condition';
  const clinicalStatus = c.clinicalStatus?.coding?.[0]?.code;
  const onset = c.onsetDateTime ?? c.onsetPeriod?.start ?? c.recordedDate;
  const abatement = c.abatementDateTime ?? c.abatementPeriod?.end;
  const verification = c.verificationStatus?.coding?.[0]?.code;
  const fact: Fact = { type: 'condition', name, ...(clinicalStatus ? { clinicalStatus } : {}), ...(onset ? { onset } : {}), ...(abatement ? { abatement } : {}) };
  const content =
    `Condition recorded: ${name}` +
    (onset ? `, since ${formatDate(onset)}` : '') +
    (clinicalStatus ? `; status ${clinicalStatus}` : '') +
    (abatement ? ` (resolved ${formatDate(abatement)})` : '') +
    (verification && verification !== 'confirmed' ? `; verification ${verification}` : '') +
    '.' +
    noteText(c.note);
  return { kind: 'Condition', title: name, date: onset, content, fact };
}

function medicationChunk(m: MedicationRequest | MedicationStatement): ChunkDraft {
  const name = conceptText(m.medicationCodeableConcept) ?? m.medicationReference?.display ?? 'Medication';
  const dosage = (m.resourceType === 'MedicationRequest' ? m.dosageInstruction : m.dosage)?.map((d) => d.text).filter(Boolean).join('; ');
  const date = m.resourceType === 'MedicationRequest' ? m.authoredOn : (m.effectiveDateTime ?? m.effectivePeriod?.start ?? m.dateAsserted);
  const verb = m.resourceType === 'MedicationRequest' ? 'prescribed' : 'taken';
  const reason = (m.reasonCode ?? []).map(conceptText).filter(Boolean).join(', ');
  const fact: Fact = { type: 'medication', name, status: m.status, ...(dosage ? { dosage } : {}) };
  const content =
    `Medication ${verb}: ${name}` +
    (date ? ` on ${formatDate(date)}` : '') +
    `; status ${m.status}` +
    (dosage ? `; instructions: ${dosage}` : '') +
    (reason ? `; for ${reason}` : '') +
    '.' +
    noteText(m.note);
  return { kind: m.resourceType, title: name, date, content, fact };
}

function encounterChunk(e: Encounter): ChunkDraft {
  const name = conceptText(e.type?.[0]) ?? e.class?.display ?? 'Visit';
  const date = e.period?.start;
  const reason = [...(e.reasonCode ?? []).map(conceptText), ...(e.reasonReference ?? []).map((r) => r.display)].filter(Boolean).join(', ');
  const where = e.serviceProvider?.display ?? e.location?.[0]?.location.display;
  const who = e.participant?.find((p) => p.individual?.display)?.individual?.display;
  const fact: Fact = { type: 'encounter', name, ...(reason ? { reason } : {}) };
  const content =
    `Visit (consultation): ${name} on ${formatDate(date)}` +
    (reason ? ` for ${reason}` : '') +
    (who ? ` with ${who}` : '') +
    (where ? ` at ${where}` : '') +
    `; status ${e.status}.`;
  return { kind: 'Encounter', title: name, date, content, fact };
}

function procedureChunk(p: Procedure): ChunkDraft {
  const name = conceptText(p.code) ?? 'Procedure';
  const date = p.performedDateTime ?? p.performedPeriod?.start;
  const reason = [...(p.reasonCode ?? []).map(conceptText), ...(p.reasonReference ?? []).map((r) => r.display)].filter(Boolean).join(', ');
  const content = `Procedure: ${name} on ${formatDate(date)}${reason ? ` for ${reason}` : ''}; status ${p.status}.${noteText(p.note)}`;
  return { kind: 'Procedure', title: name, date, content, fact: { type: 'procedure', name, status: p.status } };
}

function immunizationChunk(i: Immunization): ChunkDraft {
  const name = conceptText(i.vaccineCode) ?? 'Vaccine';
  const date = i.occurrenceDateTime ?? i.recorded;
  const content = `Immunization (vaccination): ${name} on ${formatDate(date)}; status ${i.status}.${noteText(i.note)}`;
  return { kind: 'Immunization', title: name, date, content, fact: { type: 'immunization', name, status: i.status } };
}

function allergyChunk(a: AllergyIntolerance): ChunkDraft {
  const name = conceptText(a.code) ?? 'Allergy';
  const reaction = a.reaction?.flatMap((r) => r.manifestation.map(conceptText)).filter(Boolean).join(', ');
  const date = a.onsetDateTime ?? a.recordedDate;
  const content =
    `Allergy or intolerance: ${name}` +
    (reaction ? `; reaction ${reaction}` : '') +
    (a.criticality ? `; criticality ${a.criticality}` : '') +
    (date ? `; recorded ${formatDate(date)}` : '') +
    '.';
  return { kind: 'AllergyIntolerance', title: name, date, content, fact: { type: 'allergy', name, ...(reaction ? { reaction } : {}), ...(a.criticality ? { criticality: a.criticality } : {}) } };
}

function reportChunks(r: DiagnosticReport): ChunkDraft[] {
  const name = conceptText(r.code) ?? 'Report';
  const date = r.effectiveDateTime ?? r.effectivePeriod?.start ?? r.issued;
  const conclusion = [r.conclusion, ...(r.conclusionCode ?? []).map(conceptText)].filter(Boolean).join('; ');
  const results = (r.result ?? []).map((x) => x.display).filter(Boolean).join(', ');
  const summary: ChunkDraft = {
    kind: 'DiagnosticReport',
    title: name,
    date,
    content: `Report: ${name} on ${formatDate(date)}; status ${r.status}.${conclusion ? ` Conclusion: ${conclusion}.` : ''}${results ? ` Results: ${results}.` : ''}`,
    fact: { type: 'report', name, ...(conclusion ? { conclusion } : {}) },
  };
  const text = (r.presentedForm ?? []).map(attachmentText).filter(Boolean).join('\n\n');
  return [summary, ...passages(text, name, date)];
}

function documentChunks(d: DocumentReference, extracted: string | undefined): ChunkDraft[] {
  const title = d.description ?? conceptText(d.type) ?? d.content[0]?.attachment.title ?? 'Document';
  const date = d.date ?? d.context?.period?.start ?? d.content[0]?.attachment.creation;
  const text = [extracted, ...d.content.map((c) => attachmentText(c.attachment))].filter(Boolean).join('\n\n');
  const drafts = passages(text, title, date);
  // A document whose text is not (yet) readable is still known by its title and date.
  return drafts.length > 0 ? drafts : [{ kind: 'document', title, date, content: `Document: ${title}, dated ${formatDate(date)}.` }];
}

/** The text of an inline plain-text, markdown or HTML attachment (PDFs and images go through the document pipeline). */
function attachmentText(a: Attachment): string | undefined {
  if (!a.data || !/^text\/(plain|markdown|html)/.test(a.contentType ?? '')) return undefined;
  const text = Buffer.from(a.data, 'base64').toString('utf8');
  return a.contentType!.startsWith('text/html') ? text.replace(/<(br|p|div|li|h\d)[^>]*>/gi, '\n').replace(/<[^>]+>/g, ' ').replace(/&nbsp;/g, ' ') : text;
}

const MAX_PASSAGE = 700;

/**
 * Cuts document text at its headings ("# Assessment", "ASSESSMENT AND PLAN:", "Medications:") and
 * packs each section's paragraphs into passages of at most MAX_PASSAGE characters (a longer
 * paragraph is cut between sentences), so a passage never mixes two sections.
 */
export function passages(text: string, title: string, date: string | undefined): ChunkDraft[] {
  const sections: { heading?: string; lines: string[] }[] = [{ lines: [] }];
  for (const raw of text.replace(/\r\n?/g, '\n').split('\n')) {
    const line = raw.trim();
    const heading = headingOf(line);
    if (heading) {
      sections.push({ heading, lines: [] });
      const rest = line.slice(line.indexOf(':') + 1).trim();
      if (line.includes(':') && rest) sections[sections.length - 1].lines.push(rest);
    } else {
      sections[sections.length - 1].lines.push(line);
    }
  }
  const drafts: ChunkDraft[] = [];
  for (const section of sections) {
    const paragraphs = section.lines.join('\n').split(/\n\s*\n/).map((p) => p.replace(/\s+/g, ' ').trim()).filter(Boolean);
    let current = '';
    const emit = (): void => {
      if (current) drafts.push({ kind: 'document', title, ...(section.heading ? { section: section.heading } : {}), date, content: current });
      current = '';
    };
    for (const paragraph of paragraphs.flatMap(splitLong)) {
      if (current && current.length + paragraph.length + 1 > MAX_PASSAGE) emit();
      current = current ? `${current} ${paragraph}` : paragraph;
    }
    emit();
  }
  return drafts;
}

function headingOf(line: string): string | undefined {
  const markdown = /^#{1,6}\s+(.{1,80})$/.exec(line);
  if (markdown) return markdown[1].replace(/:$/, '').trim();
  const labelled = /^([A-Za-z][A-Za-z /&-]{2,40}):(\s|$)/.exec(line);
  if (labelled && (labelled[1] === labelled[1].toUpperCase() || labelled[1].split(' ').length <= 4)) return capitalise(labelled[1].toLowerCase());
  if (/^[A-Z][A-Z /&-]{3,40}$/.test(line)) return capitalise(line.toLowerCase());
  return undefined;
}

function splitLong(paragraph: string): string[] {
  if (paragraph.length <= MAX_PASSAGE) return [paragraph];
  const out: string[] = [];
  let current = '';
  for (const sentence of paragraph.split(/(?<=[.!?])\s+/)) {
    for (let piece = sentence; piece.length > 0; piece = piece.slice(MAX_PASSAGE)) {
      const part = piece.slice(0, MAX_PASSAGE);
      if (current && current.length + part.length + 1 > MAX_PASSAGE) {
        out.push(current);
        current = '';
      }
      current = current ? `${current} ${part}` : part;
    }
  }
  if (current) out.push(current);
  return out;
}

function noteText(notes: { text: string }[] | undefined): string {
  const text = (notes ?? []).map((n) => n.text).join(' ').trim();
  return text ? ` Note: ${text}` : '';
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
