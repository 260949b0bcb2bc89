import type { Bundle, BundleEntry, Observation, Patient } from '@medplum/fhirtypes';

export const BENCH_IDENTIFIER_SYSTEM = 'urn:carelens:bench';
const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const TWO_YEARS_MS = 2 * 365.25 * 24 * 3600 * 1000;

/** Small seeded PRNG (mulberry32) so a run's data can be reproduced with --seed. */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(min: number, maxInclusive: number): number {
    return min + Math.floor(this.next() * (maxInclusive - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  uuid(): string {
    const bytes = Array.from({ length: 16 }, () => this.int(0, 255));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = bytes.map((b) => b.toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
}

interface ObservationKind {
  loinc: string;
  display: string;
  category: 'vital-signs' | 'laboratory';
  ucum: string;
  min: number;
  max: number;
  decimals: number;
}

export const HEART_RATE_LOINC = '8867-4';

const OBSERVATION_KINDS: readonly ObservationKind[] = [
  { loinc: HEART_RATE_LOINC, display: 'Heart rate', category: 'vital-signs', ucum: '/min', min: 52, max: 110, decimals: 0 },
  { loinc: '8480-6', display: 'Systolic blood pressure', category: 'vital-signs', ucum: 'mm[Hg]', min: 98, max: 168, decimals: 0 },
  { loinc: '8462-4', display: 'Diastolic blood pressure', category: 'vital-signs', ucum: 'mm[Hg]', min: 58, max: 102, decimals: 0 },
  { loinc: '9279-1', display: 'Respiratory rate', category: 'vital-signs', ucum: '/min', min: 12, max: 22, decimals: 0 },
  { loinc: '8310-5', display: 'Body temperature', category: 'vital-signs', ucum: 'Cel', min: 36.1, max: 38.4, decimals: 1 },
  { loinc: '29463-7', display: 'Body weight', category: 'vital-signs', ucum: 'kg', min: 48, max: 118, decimals: 1 },
  { loinc: '8302-2', display: 'Body height', category: 'vital-signs', ucum: 'cm', min: 152, max: 195, decimals: 1 },
  { loinc: '39156-5', display: 'Body mass index (BMI) [Ratio]', category: 'vital-signs', ucum: 'kg/m2', min: 18.5, max: 36, decimals: 1 },
  { loinc: '59408-5', display: 'Oxygen saturation in Arterial blood by Pulse oximetry', category: 'vital-signs', ucum: '%', min: 92, max: 100, decimals: 0 },
  { loinc: '2339-0', display: 'Glucose [Mass/volume] in Blood', category: 'laboratory', ucum: 'mg/dL', min: 68, max: 210, decimals: 0 },
  { loinc: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood', category: 'laboratory', ucum: '%', min: 4.6, max: 9.8, decimals: 1 },
  { loinc: '2093-3', display: 'Cholesterol [Mass/volume] in Serum or Plasma', category: 'laboratory', ucum: 'mg/dL', min: 140, max: 280, decimals: 0 },
  { loinc: '2571-8', display: 'Triglyceride [Mass/volume] in Serum or Plasma', category: 'laboratory', ucum: 'mg/dL', min: 50, max: 300, decimals: 0 },
  { loinc: '18262-6', display: 'Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay', category: 'laboratory', ucum: 'mg/dL', min: 60, max: 190, decimals: 0 },
  { loinc: '2085-9', display: 'Cholesterol in HDL [Mass/volume] in Serum or Plasma', category: 'laboratory', ucum: 'mg/dL', min: 30, max: 90, decimals: 0 },
  { loinc: '2160-0', display: 'Creatinine [Mass/volume] in Serum or Plasma', category: 'laboratory', ucum: 'mg/dL', min: 0.6, max: 1.6, decimals: 2 },
  { loinc: '6299-2', display: 'Urea nitrogen [Mass/volume] in Blood', category: 'laboratory', ucum: 'mg/dL', min: 7, max: 26, decimals: 0 },
  { loinc: '2951-2', display: 'Sodium [Moles/volume] in Serum or Plasma', category: 'laboratory', ucum: 'mmol/L', min: 134, max: 146, decimals: 0 },
  { loinc: '2823-3', display: 'Potassium [Moles/volume] in Serum or Plasma', category: 'laboratory', ucum: 'mmol/L', min: 3.4, max: 5.3, decimals: 1 },
  { loinc: '718-7', display: 'Hemoglobin [Mass/volume] in Blood', category: 'laboratory', ucum: 'g/dL', min: 11.5, max: 17.5, decimals: 1 },
];

const FAMILY_NAMES = [
  'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez',
  'Hernandez', 'Lopez', 'Gonzalez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore', 'Jackson', 'Martin',
  'Lee', 'Perez', 'Thompson', 'White', 'Harris', 'Sanchez', 'Clark', 'Ramirez', 'Lewis', 'Robinson',
  'Walker', 'Young', 'Allen', 'King', 'Wright', 'Scott', 'Torres', 'Nguyen', 'Hill', 'Flores',
] as const;
const MALE_GIVEN = ['James', 'Robert', 'John', 'Michael', 'David', 'William', 'Richard', 'Joseph', 'Thomas', 'Carlos', 'Daniel', 'Matthew'] as const;
const FEMALE_GIVEN = ['Mary', 'Patricia', 'Jennifer', 'Linda', 'Elizabeth', 'Barbara', 'Susan', 'Jessica', 'Sarah', 'Maria', 'Karen', 'Emily'] as const;
const CITIES = [
  { city: 'Boston', postalCode: '02118' },
  { city: 'Worcester', postalCode: '01608' },
  { city: 'Springfield', postalCode: '01103' },
  { city: 'Cambridge', postalCode: '02139' },
  { city: 'Lowell', postalCode: '01852' },
] as const;
const STREETS = ['Main St', 'Oak Ave', 'Maple Dr', 'Cedar Ln', 'Elm St', 'Washington Blvd'] as const;

export interface GeneratedTransaction {
  bundle: Bundle;
  /** Number of resources the bundle creates. */
  resources: number;
  /** Family name of the bundle's Patient, if it has one. */
  family: string | undefined;
}

/** One Patient (urn:uuid) plus `observations` Observations that reference it. */
export function patientTransaction(rng: Random, observations: number, identifierValue: string): GeneratedTransaction {
  const patientUrl = `urn:uuid:${rng.uuid()}`;
  const patient = syntheticPatient(rng, identifierValue);
  const entries: BundleEntry[] = [
    { fullUrl: patientUrl, resource: patient, request: { method: 'POST', url: 'Patient' } },
    ...observationEntries(rng, patientUrl, observations),
  ];
  return { bundle: transaction(entries), resources: entries.length, family: patient.name?.[0]?.family };
}

/** Observations only, for a subject that already exists (e.g. "Patient/123"). */
export function observationTransaction(rng: Random, subjectReference: string, observations: number): GeneratedTransaction {
  const entries = observationEntries(rng, subjectReference, observations);
  return { bundle: transaction(entries), resources: entries.length, family: undefined };
}

function transaction(entry: BundleEntry[]): Bundle {
  return { resourceType: 'Bundle', type: 'transaction', entry };
}

function syntheticPatient(rng: Random, identifierValue: string): Patient {
  const gender = rng.next() < 0.5 ? 'male' : 'female';
  const given = rng.pick(gender === 'male' ? MALE_GIVEN : FEMALE_GIVEN);
  const birth = new Date(Date.UTC(rng.int(1938, 2016), rng.int(0, 11), rng.int(1, 28)));
  const place = rng.pick(CITIES);
  return {
    resourceType: 'Patient',
    identifier: [{ system: BENCH_IDENTIFIER_SYSTEM, value: identifierValue }],
    name: [{ use: 'official', family: rng.pick(FAMILY_NAMES), given: [given], prefix: [gender === 'male' ? 'Mr.' : 'Ms.'] }],
    telecom: [{ system: 'phone', value: `555-${rng.int(100, 999)}-${rng.int(1000, 9999)}`, use: 'home' }],
    gender,
    birthDate: birth.toISOString().slice(0, 10),
    address: [
      {
        line: [`${rng.int(1, 999)} ${rng.pick(STREETS)}`],
        city: place.city,
        state: 'MA',
        postalCode: place.postalCode,
        country: 'US',
      },
    ],
  };
}

function observationEntries(rng: Random, subjectReference: string, count: number): BundleEntry[] {
  const now = Date.now();
  return Array.from({ length: count }, (_, i) => ({
    fullUrl: `urn:uuid:${rng.uuid()}`,
    // Cycling through the kinds guarantees every patient has heart-rate readings to search for.
    resource: syntheticObservation(rng, OBSERVATION_KINDS[i % OBSERVATION_KINDS.length], subjectReference, now),
    request: { method: 'POST', url: 'Observation' },
  }));
}

function syntheticObservation(rng: Random, kind: ObservationKind, subjectReference: string, now: number): Observation {
  const effective = new Date(now - Math.floor(rng.next() * TWO_YEARS_MS));
  effective.setUTCMilliseconds(0);
  const value = Number((kind.min + rng.next() * (kind.max - kind.min)).toFixed(kind.decimals));
  const timestamp = effective.toISOString().replace('.000Z', 'Z');
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [
      {
        coding: [
          {
            system: OBSERVATION_CATEGORY,
            code: kind.category,
            display: kind.category === 'vital-signs' ? 'Vital signs' : 'Laboratory',
          },
        ],
      },
    ],
    code: { coding: [{ system: LOINC, code: kind.loinc, display: kind.display }], text: kind.display },
    subject: { reference: subjectReference },
    effectiveDateTime: timestamp,
    issued: timestamp,
    valueQuantity: { value, unit: kind.ucum, system: UCUM, code: kind.ucum },
  };
}
