import type { DocumentText } from './document-text.js';

/** What a degree certificate or a professional licence says, as far as it can be read. */
export interface Credential {
  /** The awarding university or the licensing body. */
  issuer?: string;
  /** The degree or licence, as printed (e.g. "Doctor of Medicine", "Registered Nurse"). */
  title?: string;
  licenceNumber?: string;
  /** YYYY-MM-DD */
  issued?: string;
  /** 0–1: how many of the four parts were found, times the text's own confidence. */
  confidence: number;
}

const ISSUER = /\b(university|college|institute|school of (?:medicine|nursing)|faculty of|medical council|board of (?:medicine|nursing|medical)|nursing (?:and midwifery )?(?:council|board)|royal college)\b/i;
const TITLE =
  /\b(doctor of (?:medicine|osteopathic medicine|pharmacy|philosophy)|bachelor of (?:medicine(?:,? bachelor of surgery)?|science in nursing|nursing|pharmacy)|master of (?:science|nursing|public health)[\w ,]*|registered nurse|nurse practitioner|licen[cs]ed practical nurse|physician assistant|M\.?B\.?B\.?S|M\.?B\.?,? ?Ch\.?B|M\.?D\.?(?=\s|$)|B\.?S\.?N|Pharm\.?D|licen[cs]e to practi[cs]e medicine)\b/i;
const LICENCE = /\b(?:licen[cs]e|registration|certificate|reg\.?)\s*(?:no\.?|number|#|num\.?)?\s*[:#.]?\s*([A-Z]{0,4}[- ]?\d[\dA-Z-]{3,})\b/i;
const ISSUED = /\b(?:issued|date of issue|issue date|conferred|awarded|granted|registered|dated?|effective)\b(?:\s+(?:on|this))?\s*[:,]?\s*(.+)$/i;

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];

/** Finds issuer, title, licence number and issue date in a credential document's lines. */
export function parseCredential(text: DocumentText): Credential {
  const lines = text.pages.flatMap((p) => p.lines);
  const found: Omit<Credential, 'confidence'> = {};
  let confidenceSum = 0;
  let used = 0;
  const take = (confidence: number): void => {
    confidenceSum += confidence;
    used++;
  };
  for (const line of lines) {
    const value = line.text.trim();
    if (!found.issuer && ISSUER.test(value) && !/\bthis is to certify\b/i.test(value)) {
      found.issuer = value.replace(/\s{2,}/g, ' ');
      take(line.confidence);
    }
    const title = !found.title ? TITLE.exec(value) : null;
    if (title) {
      found.title = title[1].replace(/\s{2,}/g, ' ');
      take(line.confidence);
    }
    const licence = !found.licenceNumber ? LICENCE.exec(value) : null;
    if (licence) {
      found.licenceNumber = licence[1].replace(/\s+/g, '');
      take(line.confidence);
    }
    const issued = !found.issued ? ISSUED.exec(value) : null;
    const date = issued ? parseDate(issued[1]) : undefined;
    if (date) {
      found.issued = date;
      take(line.confidence);
    }
  }
  const parts = [found.issuer, found.title, found.licenceNumber, found.issued].filter(Boolean).length;
  return { ...found, confidence: used ? (parts / 4) * (confidenceSum / used) : 0 };
}

/** 2015-06-12, 12 June 2015, June 12, 2015, 12th day of June 2015, 12/06/2015 (day first, as most of the world writes it). */
export function parseDate(text: string): string | undefined {
  const iso = /(\d{4})-(\d{2})-(\d{2})/.exec(text);
  if (iso) {
    return valid(+iso[1], +iso[2], +iso[3]);
  }
  const month = new RegExp(`(${MONTHS.map((m) => m.slice(0, 3)).join('|')})[a-z]*\\.?`, 'i');
  const dayFirst = new RegExp(`(\\d{1,2})(?:st|nd|rd|th)?(?:\\s+day)?(?:\\s+of)?\\s+${month.source}\\s*,?\\s*(\\d{4})`, 'i').exec(text);
  if (dayFirst) {
    return valid(+dayFirst[3], monthIndex(dayFirst[2]), +dayFirst[1]);
  }
  const monthFirst = new RegExp(`${month.source}\\s+(\\d{1,2})(?:st|nd|rd|th)?\\s*,?\\s*(\\d{4})`, 'i').exec(text);
  if (monthFirst) {
    return valid(+monthFirst[3], monthIndex(monthFirst[1]), +monthFirst[2]);
  }
  const numeric = /(\d{1,2})[/.](\d{1,2})[/.](\d{4})/.exec(text);
  if (numeric) {
    return valid(+numeric[3], +numeric[2], +numeric[1]);
  }
  return undefined;
}

function monthIndex(name: string): number {
  return MONTHS.findIndex((m) => m.startsWith(name.toLowerCase().slice(0, 3))) + 1;
}

function valid(year: number, month: number, day: number): string | undefined {
  const date = new Date(Date.UTC(year, month - 1, day));
  if (month < 1 || month > 12 || date.getUTCDate() !== day || year < 1900 || year > 2100) {
    return undefined;
  }
  return date.toISOString().slice(0, 10);
}
