/**
 * Carelens demo data set: one FHIR R4 transaction Bundle with fictional people.
 *
 * Written by the project (not derived from any real or third-party data set), fully
 * deterministic (fixed ids and dates in 2025–2026, no randomness, no clock), and
 * idempotent to load: every entry is a PUT to "<Type>/<fixed id>" and every reference
 * is a literal "<Type>/<id>", so posting the bundle twice updates rather than duplicates.
 *
 * Clinical stories (useful for demos, e.g. NEWS2 triage):
 *   1. Rosa Delgado (F, 1967)       – type 2 diabetes: high glucose and HbA1c, metformin.
 *   2. Thomas Brennan (M, 1971)     – hypertension + hyperlipidemia: high BP, lisinopril.
 *   3. Aiko Lindqvist (F, 1994)     – healthy; one resolved viral pharyngitis.
 *   4. Leo Fairbanks (M, 2018)      – child with asthma, pediatric vitals, albuterol.
 *   5. Margaret Whitcombe (F, 1939) – COPD; latest ED visit with pneumonia and
 *                                     abnormal vitals (RR 24, SpO2 91, HR 112, T 38.4).
 *
 * NPIs are fictional and deliberately fail the NPI check digit, so they cannot belong
 * to a real provider. Phone numbers use the fictional 555-01xx range, e-mail example.com.
 */
import type {
  Bundle,
  BundleEntry,
  CodeableConcept,
  Coding,
  Condition,
  Encounter,
  EncounterParticipant,
  MedicationRequest,
  Meta,
  Observation,
  Organization,
  Patient,
  Practitioner,
  Quantity,
  Reference,
  Resource,
} from '@medplum/fhirtypes';

// ---------------------------------------------------------------------------
// Code systems and shared constants
// ---------------------------------------------------------------------------

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const SNOMED = 'http://snomed.info/sct';
const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const OBS_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const OBS_INTERPRETATION = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';
const PARTICIPATION_TYPE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
const CONDITION_CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const CONDITION_VER_STATUS = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';
const CONDITION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/condition-category';
const FHIR_SD = 'http://hl7.org/fhir/StructureDefinition/';

const ORG_SYSTEM = 'urn:carelens:demo:org';
const ORG_TYPE = 'http://terminology.hl7.org/CodeSystem/organization-type';
const IDENTIFIER_TYPE = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const NPI_SYSTEM = 'http://hl7.org/fhir/sid/us-npi';
const MRN_SYSTEM = 'urn:carelens:demo:mrn';

/** Tag on every demo resource, so the demo data can be found (and removed) with `_tag`. */
const DEMO_META_TAG: Coding = { system: 'urn:carelens:demo', code: 'demo', display: 'Carelens demo data' };

const ORG_ID = 'demo-org-1';
export const PHYSICIAN_ID = 'demo-practitioner-1';
export const NURSE_ID = 'demo-practitioner-2';

const ORG_NAME = 'Carelens Demo General Hospital';
const ORG_REF: Reference<Organization> = { reference: `Organization/${ORG_ID}`, display: ORG_NAME };
const PHYSICIAN_REF: Reference<Practitioner> = { reference: `Practitioner/${PHYSICIAN_ID}`, display: 'Dr. Nadia Ferreira' };
const NURSE_REF: Reference<Practitioner> = { reference: `Practitioner/${NURSE_ID}`, display: 'Samuel Osei, RN' };

// ---------------------------------------------------------------------------
// Observation definitions
// ---------------------------------------------------------------------------

type VitalKey = 'hr' | 'rr' | 'temp' | 'spo2' | 'weight' | 'height';
type LabKey = 'glucose' | 'hba1c' | 'chol' | 'hdl' | 'creat' | 'hgb';

interface QuantityDef {
  loinc: string;
  display: string;
  unit: string;
  ucum: string;
}

interface VitalDef extends QuantityDef {
  /** Last path segment of the FHIR R4 vital-signs profile canonical. */
  profile: string;
  extraCodings?: Coding[];
}

const VITALS: Record<VitalKey, VitalDef> = {
  hr: { loinc: '8867-4', display: 'Heart rate', unit: 'beats/minute', ucum: '/min', profile: 'heartrate' },
  rr: { loinc: '9279-1', display: 'Respiratory rate', unit: 'breaths/minute', ucum: '/min', profile: 'resprate' },
  temp: { loinc: '8310-5', display: 'Body temperature', unit: 'C', ucum: 'Cel', profile: 'bodytemp' },
  spo2: {
    loinc: '2708-6',
    display: 'Oxygen saturation in Arterial blood',
    unit: '%',
    ucum: '%',
    profile: 'oxygensat',
    extraCodings: [
      { system: LOINC, code: '59408-5', display: 'Oxygen saturation in Arterial blood by Pulse oximetry' },
    ],
  },
  weight: { loinc: '29463-7', display: 'Body weight', unit: 'kg', ucum: 'kg', profile: 'bodyweight' },
  height: { loinc: '8302-2', display: 'Body height', unit: 'cm', ucum: 'cm', profile: 'bodyheight' },
};

const BP_PANEL = { loinc: '85354-9', display: 'Blood pressure panel with all children optional', profile: 'bp' };
const BP_SYSTOLIC: QuantityDef = { loinc: '8480-6', display: 'Systolic blood pressure', unit: 'mmHg', ucum: 'mm[Hg]' };
const BP_DIASTOLIC: QuantityDef = { loinc: '8462-4', display: 'Diastolic blood pressure', unit: 'mmHg', ucum: 'mm[Hg]' };

const LABS: Record<LabKey, QuantityDef> = {
  glucose: { loinc: '2339-0', display: 'Glucose [Mass/volume] in Blood', unit: 'mg/dL', ucum: 'mg/dL' },
  hba1c: { loinc: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood', unit: '%', ucum: '%' },
  chol: { loinc: '2093-3', display: 'Cholesterol [Mass/volume] in Serum or Plasma', unit: 'mg/dL', ucum: 'mg/dL' },
  hdl: { loinc: '2085-9', display: 'Cholesterol in HDL [Mass/volume] in Serum or Plasma', unit: 'mg/dL', ucum: 'mg/dL' },
  creat: { loinc: '2160-0', display: 'Creatinine [Mass/volume] in Serum or Plasma', unit: 'mg/dL', ucum: 'mg/dL' },
  hgb: { loinc: '718-7', display: 'Hemoglobin [Mass/volume] in Blood', unit: 'g/dL', ucum: 'g/dL' },
};

type Gender = 'male' | 'female';

/** Reference interval [low, high] for a lab, by sex and age (years) where it matters. */
function labRange(key: LabKey, gender: Gender, age: number): [number, number] {
  switch (key) {
    case 'glucose':
      return [70, 99];
    case 'hba1c':
      return [4.0, 5.6];
    case 'chol':
      return [125, 199];
    case 'hdl':
      return [40, 90];
    case 'creat':
      return age < 13 ? [0.3, 0.7] : gender === 'female' ? [0.5, 1.1] : [0.7, 1.3];
    case 'hgb':
      return age < 13 ? [11.5, 15.5] : gender === 'female' ? [12.0, 15.5] : [13.5, 17.5];
  }
}

// ---------------------------------------------------------------------------
// The data table
// ---------------------------------------------------------------------------

type EncounterClass = 'AMB' | 'EMER' | 'IMP';

interface VitalValues {
  hr: number;
  rr: number;
  temp: number;
  spo2: number;
  weight: number;
  height: number;
  bp: [systolic: number, diastolic: number];
}

interface EncounterRow {
  cls: EncounterClass;
  /** Start and end as UTC instants. */
  start: string;
  end: string;
  reason: string;
  vitals: VitalValues;
  labs?: Partial<Record<LabKey, number>>;
}

interface ConditionRow {
  snomed: string;
  display: string;
  onset: string;
  recorded: string;
  /** Resolved conditions carry an abatement date. */
  abatement?: string;
  /** 1-based encounter index for encounter diagnoses; omitted for problem-list items. */
  encounter?: number;
}

interface MedicationRow {
  rxnorm: string;
  display: string;
  authoredOn: string;
  dosage: string;
  /** 1-based index into the patient's conditions. */
  reason: number;
  /** 1-based encounter index. */
  encounter: number;
}

interface PatientRow {
  mrn: string;
  family: string;
  given: string[];
  gender: Gender;
  birthDate: string;
  phone: string;
  email?: string;
  line: string;
  postalCode: string;
  encounters: EncounterRow[];
  conditions: ConditionRow[];
  medications: MedicationRow[];
}

const CLASS_DISPLAY: Record<EncounterClass, string> = {
  AMB: 'ambulatory',
  EMER: 'emergency',
  IMP: 'inpatient encounter',
};

const PATIENTS: readonly PatientRow[] = [
  {
    mrn: 'MRN-0001',
    family: 'Delgado',
    given: ['Rosa', 'Maria'],
    gender: 'female',
    birthDate: '1967-03-14',
    phone: '+1-503-555-0101',
    email: 'rosa.delgado@example.com',
    line: '14 Alder Court',
    postalCode: '97001',
    encounters: [
      {
        cls: 'AMB',
        start: '2025-03-11T09:00:00Z',
        end: '2025-03-11T09:40:00Z',
        reason: 'Diabetes follow-up',
        vitals: { hr: 84, rr: 16, temp: 36.8, spo2: 97, weight: 91.2, height: 163, bp: [134, 84] },
        labs: { glucose: 182, hba1c: 8.4, chol: 212, hdl: 38, creat: 1.0, hgb: 13.1 },
      },
      {
        cls: 'EMER',
        start: '2025-08-22T21:15:00Z',
        end: '2025-08-23T02:30:00Z',
        reason: 'Hyperglycemia with polyuria and fatigue',
        vitals: { hr: 104, rr: 20, temp: 37.1, spo2: 96, weight: 89.8, height: 163, bp: [128, 78] },
        labs: { glucose: 312, creat: 1.2 },
      },
      {
        cls: 'AMB',
        start: '2025-12-02T14:00:00Z',
        end: '2025-12-02T14:30:00Z',
        reason: 'Diabetes follow-up',
        vitals: { hr: 78, rr: 15, temp: 36.7, spo2: 98, weight: 88.5, height: 163, bp: [130, 82] },
        labs: { glucose: 151, hba1c: 7.6 },
      },
    ],
    conditions: [
      { snomed: '44054006', display: 'Diabetes mellitus type 2', onset: '2019-06-03', recorded: '2019-06-03' },
    ],
    medications: [
      {
        rxnorm: '861007',
        display: 'metformin hydrochloride 500 MG Oral Tablet',
        authoredOn: '2025-03-11',
        dosage: 'Take 1 tablet by mouth twice daily with meals',
        reason: 1,
        encounter: 1,
      },
    ],
  },
  {
    mrn: 'MRN-0002',
    family: 'Brennan',
    given: ['Thomas', 'Edward'],
    gender: 'male',
    birthDate: '1971-08-02',
    phone: '+1-503-555-0102',
    email: 'tom.brennan@example.com',
    line: '230 Harbor View Road',
    postalCode: '97002',
    encounters: [
      {
        cls: 'AMB',
        start: '2025-04-15T10:00:00Z',
        end: '2025-04-15T10:30:00Z',
        reason: 'Elevated blood pressure at workplace screening',
        vitals: { hr: 82, rr: 16, temp: 36.6, spo2: 98, weight: 96.4, height: 180, bp: [162, 98] },
        labs: { glucose: 94, chol: 238, hdl: 42, creat: 1.1, hgb: 15.2 },
      },
      {
        cls: 'AMB',
        start: '2025-07-15T10:00:00Z',
        end: '2025-07-15T10:20:00Z',
        reason: 'Hypertension follow-up',
        vitals: { hr: 76, rr: 14, temp: 36.7, spo2: 98, weight: 95.1, height: 180, bp: [154, 94] },
      },
      {
        cls: 'IMP',
        start: '2025-11-03T18:40:00Z',
        end: '2025-11-05T11:00:00Z',
        reason: 'Hypertensive urgency with headache',
        vitals: { hr: 92, rr: 18, temp: 36.9, spo2: 97, weight: 95.6, height: 180, bp: [184, 108] },
        labs: { creat: 1.2, glucose: 104 },
      },
    ],
    conditions: [
      { snomed: '38341003', display: 'Hypertension', onset: '2025-04-15', recorded: '2025-04-15' },
      { snomed: '55822004', display: 'Hyperlipidemia', onset: '2025-04-15', recorded: '2025-04-16' },
    ],
    medications: [
      {
        rxnorm: '314076',
        display: 'lisinopril 10 MG Oral Tablet',
        authoredOn: '2025-04-15',
        dosage: 'Take 1 tablet by mouth once daily',
        reason: 1,
        encounter: 1,
      },
    ],
  },
  {
    mrn: 'MRN-0003',
    family: 'Lindqvist',
    given: ['Aiko'],
    gender: 'female',
    birthDate: '1994-05-27',
    phone: '+1-503-555-0103',
    email: 'aiko.lindqvist@example.com',
    line: '7 Juniper Lane, Apt 3B',
    postalCode: '97003',
    encounters: [
      {
        cls: 'AMB',
        start: '2025-06-17T08:30:00Z',
        end: '2025-06-17T09:00:00Z',
        reason: 'Annual physical examination',
        vitals: { hr: 64, rr: 14, temp: 36.6, spo2: 99, weight: 61.3, height: 168, bp: [112, 72] },
        labs: { glucose: 86, chol: 172, hdl: 61, creat: 0.8, hgb: 13.8 },
      },
      {
        cls: 'AMB',
        start: '2026-01-20T15:00:00Z',
        end: '2026-01-20T15:20:00Z',
        reason: 'Sore throat for two days',
        vitals: { hr: 86, rr: 16, temp: 37.9, spo2: 98, weight: 60.8, height: 168, bp: [116, 74] },
      },
    ],
    conditions: [
      {
        snomed: '195662009',
        display: 'Acute viral pharyngitis',
        onset: '2026-01-18',
        recorded: '2026-01-20',
        abatement: '2026-01-27',
        encounter: 2,
      },
    ],
    medications: [],
  },
  {
    mrn: 'MRN-0004',
    family: 'Fairbanks',
    given: ['Leo'],
    gender: 'male',
    birthDate: '2018-09-02',
    phone: '+1-503-555-0104',
    line: '52 Orchard Street',
    postalCode: '97004',
    encounters: [
      {
        cls: 'AMB',
        start: '2025-04-08T16:00:00Z',
        end: '2025-04-08T16:30:00Z',
        reason: 'Well-child visit',
        vitals: { hr: 92, rr: 20, temp: 36.8, spo2: 98, weight: 21.6, height: 118, bp: [100, 62] },
        labs: { hgb: 12.6 },
      },
      {
        cls: 'EMER',
        start: '2025-10-15T02:10:00Z',
        end: '2025-10-15T06:45:00Z',
        reason: 'Wheezing and shortness of breath',
        vitals: { hr: 128, rr: 32, temp: 37.3, spo2: 92, weight: 22.9, height: 121, bp: [108, 68] },
      },
      {
        cls: 'AMB',
        start: '2025-10-29T16:00:00Z',
        end: '2025-10-29T16:20:00Z',
        reason: 'Asthma follow-up after emergency visit',
        vitals: { hr: 96, rr: 22, temp: 36.9, spo2: 97, weight: 23.0, height: 121, bp: [102, 64] },
      },
    ],
    conditions: [{ snomed: '195967001', display: 'Asthma', onset: '2021-05-10', recorded: '2021-05-10' }],
    medications: [
      {
        rxnorm: '745679',
        display: '200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler',
        authoredOn: '2025-10-15',
        dosage: 'Inhale 2 puffs with spacer every 4 to 6 hours as needed for wheezing',
        reason: 1,
        encounter: 2,
      },
    ],
  },
  {
    mrn: 'MRN-0005',
    family: 'Whitcombe',
    given: ['Margaret', 'Ann'],
    gender: 'female',
    birthDate: '1939-11-23',
    phone: '+1-503-555-0105',
    line: '3 Willow Bend Care Residence',
    postalCode: '97005',
    encounters: [
      {
        cls: 'AMB',
        start: '2025-05-20T13:00:00Z',
        end: '2025-05-20T13:40:00Z',
        reason: 'COPD review',
        vitals: { hr: 80, rr: 18, temp: 36.7, spo2: 94, weight: 58.2, height: 158, bp: [138, 78] },
        labs: { glucose: 96, creat: 1.0, hgb: 12.4 },
      },
      {
        cls: 'AMB',
        start: '2025-11-04T13:00:00Z',
        end: '2025-11-04T13:30:00Z',
        reason: 'Routine review and influenza vaccination',
        vitals: { hr: 78, rr: 17, temp: 36.6, spo2: 94, weight: 57.6, height: 158, bp: [136, 76] },
      },
      {
        cls: 'EMER',
        start: '2026-02-09T08:10:00Z',
        end: '2026-02-09T14:30:00Z',
        reason: 'Fever, productive cough and increasing breathlessness',
        vitals: { hr: 112, rr: 24, temp: 38.4, spo2: 91, weight: 56.9, height: 158, bp: [104, 62] },
        labs: { glucose: 128, creat: 1.4, hgb: 11.2 },
      },
    ],
    conditions: [
      {
        snomed: '13645005',
        display: 'Chronic obstructive lung disease',
        onset: '2016-02-01',
        recorded: '2016-02-01',
      },
      { snomed: '233604007', display: 'Pneumonia', onset: '2026-02-07', recorded: '2026-02-09', encounter: 3 },
    ],
    medications: [],
  },
];

/** Ids of the demo patients, in table order ("demo-patient-1" … "demo-patient-5"). */
export const DEMO_PATIENT_IDS: readonly string[] = Object.freeze(PATIENTS.map((_, i) => `demo-patient-${i + 1}`));

// ---------------------------------------------------------------------------
// Small builders
// ---------------------------------------------------------------------------

function meta(profile?: string): Meta {
  return profile ? { profile: [FHIR_SD + profile], tag: [DEMO_META_TAG] } : { tag: [DEMO_META_TAG] };
}

function entry(resource: Resource): BundleEntry {
  return { resource, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } };
}

function ref<T extends Resource>(type: T['resourceType'], id: string, display?: string): Reference<T> {
  return display ? { reference: `${type}/${id}`, display } : { reference: `${type}/${id}` };
}

function loincConcept(def: { loinc: string; display: string }, extra: Coding[] = []): CodeableConcept {
  return { coding: [{ system: LOINC, code: def.loinc, display: def.display }, ...extra], text: def.display };
}

function quantity(def: QuantityDef, value: number): Quantity {
  return { value, unit: def.unit, system: UCUM, code: def.ucum };
}

function category(code: 'vital-signs' | 'laboratory'): CodeableConcept[] {
  const display = code === 'vital-signs' ? 'Vital Signs' : 'Laboratory';
  return [{ coding: [{ system: OBS_CATEGORY, code, display }], text: display }];
}

/** Adds minutes to a UTC instant; deterministic (pure arithmetic on a fixed input). */
function addMinutes(instant: string, minutes: number): string {
  return new Date(Date.parse(instant) + minutes * 60_000).toISOString().replace('.000Z', 'Z');
}

function ageInYears(birthDate: string, at: string): number {
  const [by, bm, bd] = birthDate.split('-').map(Number);
  const [ay, am, ad] = at.slice(0, 10).split('-').map(Number);
  return ay - by - (am < bm || (am === bm && ad < bd) ? 1 : 0);
}

function interpretation(value: number, [low, high]: [number, number]): CodeableConcept[] {
  const [code, display] = value < low ? ['L', 'Low'] : value > high ? ['H', 'High'] : ['N', 'Normal'];
  return [{ coding: [{ system: OBS_INTERPRETATION, code, display }], text: display }];
}

function buildOrganization(): Organization {
  return {
    resourceType: 'Organization',
    id: ORG_ID,
    meta: meta(),
    identifier: [{ system: ORG_SYSTEM, value: 'CDGH-001' }],
    active: true,
    type: [{ coding: [{ system: ORG_TYPE, code: 'prov', display: 'Healthcare Provider' }] }],
    name: ORG_NAME,
    telecom: [
      { system: 'phone', value: '+1-503-555-0100', use: 'work' },
      { system: 'url', value: 'https://hospital.example.com', use: 'work' },
    ],
    address: [
      { use: 'work', line: ['1 Demo Plaza'], city: 'Riverbend', state: 'OR', postalCode: '97000', country: 'US' },
    ],
  };
}

interface PractitionerRow {
  id: string;
  npi: string;
  family: string;
  given: string;
  prefix?: string[];
  suffix: string[];
  gender: Gender;
  qualification: string;
}

const PRACTITIONERS: readonly PractitionerRow[] = [
  {
    id: PHYSICIAN_ID,
    npi: '1999000011',
    family: 'Ferreira',
    given: 'Nadia',
    prefix: ['Dr.'],
    suffix: ['MD'],
    gender: 'female',
    qualification: 'Doctor of Medicine (MD), Internal Medicine',
  },
  {
    id: NURSE_ID,
    npi: '1999000029',
    family: 'Osei',
    given: 'Samuel',
    suffix: ['RN'],
    gender: 'male',
    qualification: 'Registered Nurse (RN)',
  },
];

function buildPractitioner(row: PractitionerRow): Practitioner {
  return {
    resourceType: 'Practitioner',
    id: row.id,
    meta: meta(),
    identifier: [{ system: NPI_SYSTEM, value: row.npi }],
    active: true,
    name: [{ use: 'official', family: row.family, given: [row.given], ...(row.prefix ? { prefix: row.prefix } : {}), suffix: row.suffix }],
    telecom: [{ system: 'email', value: `${row.given}.${row.family}@hospital.example.com`.toLowerCase(), use: 'work' }],
    gender: row.gender,
    qualification: [{ code: { text: row.qualification }, issuer: ORG_REF }],
  };
}

function buildPatient(row: PatientRow, id: string): Patient {
  return {
    resourceType: 'Patient',
    id,
    meta: meta(),
    identifier: [
      {
        use: 'usual',
        type: {
          coding: [{ system: IDENTIFIER_TYPE, code: 'MR', display: 'Medical record number' }],
        },
        system: MRN_SYSTEM,
        value: row.mrn,
        assigner: ORG_REF,
      },
    ],
    active: true,
    name: [{ use: 'official', family: row.family, given: row.given }],
    telecom: [
      { system: 'phone', value: row.phone, use: 'home' },
      ...(row.email ? [{ system: 'email' as const, value: row.email, use: 'home' as const }] : []),
    ],
    gender: row.gender,
    birthDate: row.birthDate,
    address: [
      { use: 'home', line: [row.line], city: 'Riverbend', state: 'OR', postalCode: row.postalCode, country: 'US' },
    ],
    generalPractitioner: [PHYSICIAN_REF],
    managingOrganization: ORG_REF,
  };
}

function buildEncounter(enc: EncounterRow, id: string, patient: Reference<Patient>): Encounter {
  const participant: EncounterParticipant[] = [
    {
      type: [{ coding: [{ system: PARTICIPATION_TYPE, code: 'PPRF', display: 'primary performer' }] }],
      individual: PHYSICIAN_REF,
    },
  ];
  if (enc.cls !== 'AMB') {
    participant.push({
      type: [{ coding: [{ system: PARTICIPATION_TYPE, code: 'PART', display: 'Participation' }] }],
      individual: NURSE_REF,
    });
  }
  return {
    resourceType: 'Encounter',
    id,
    meta: meta(),
    status: 'finished',
    class: { system: ACT_CODE, code: enc.cls, display: CLASS_DISPLAY[enc.cls] },
    subject: patient,
    participant,
    period: { start: enc.start, end: enc.end },
    reasonCode: [{ text: enc.reason }],
    serviceProvider: ORG_REF,
  };
}

interface ObsContext {
  subject: Reference<Patient>;
  encounter: Reference<Encounter>;
  effectiveDateTime: string;
}

function vitalObservation(id: string, key: VitalKey, value: number, ctx: ObsContext): Observation {
  const def = VITALS[key];
  return {
    resourceType: 'Observation',
    id,
    meta: meta(def.profile),
    status: 'final',
    category: category('vital-signs'),
    code: loincConcept(def, def.extraCodings),
    subject: ctx.subject,
    encounter: ctx.encounter,
    effectiveDateTime: ctx.effectiveDateTime,
    performer: [NURSE_REF],
    valueQuantity: quantity(def, value),
  };
}

function bpObservation(id: string, [systolic, diastolic]: [number, number], ctx: ObsContext): Observation {
  return {
    resourceType: 'Observation',
    id,
    meta: meta(BP_PANEL.profile),
    status: 'final',
    category: category('vital-signs'),
    code: loincConcept(BP_PANEL),
    subject: ctx.subject,
    encounter: ctx.encounter,
    effectiveDateTime: ctx.effectiveDateTime,
    performer: [NURSE_REF],
    component: [
      { code: loincConcept(BP_SYSTOLIC), valueQuantity: quantity(BP_SYSTOLIC, systolic) },
      { code: loincConcept(BP_DIASTOLIC), valueQuantity: quantity(BP_DIASTOLIC, diastolic) },
    ],
  };
}

function labObservation(id: string, key: LabKey, value: number, range: [number, number], ctx: ObsContext): Observation {
  const def = LABS[key];
  return {
    resourceType: 'Observation',
    id,
    meta: meta(),
    status: 'final',
    category: category('laboratory'),
    code: loincConcept(def),
    subject: ctx.subject,
    encounter: ctx.encounter,
    effectiveDateTime: ctx.effectiveDateTime,
    issued: addMinutes(ctx.effectiveDateTime, 90),
    performer: [ORG_REF],
    valueQuantity: quantity(def, value),
    interpretation: interpretation(value, range),
    referenceRange: [{ low: quantity(def, range[0]), high: quantity(def, range[1]) }],
  };
}

function buildCondition(c: ConditionRow, id: string, patient: Reference<Patient>, patientIndex: number): Condition {
  const [clinical, clinicalDisplay] = c.abatement ? ['resolved', 'Resolved'] : ['active', 'Active'];
  const [catCode, catDisplay] = c.encounter
    ? ['encounter-diagnosis', 'Encounter Diagnosis']
    : ['problem-list-item', 'Problem List Item'];
  return {
    resourceType: 'Condition',
    id,
    meta: meta(),
    clinicalStatus: {
      coding: [{ system: CONDITION_CLINICAL, code: clinical, display: clinicalDisplay }],
    },
    verificationStatus: { coding: [{ system: CONDITION_VER_STATUS, code: 'confirmed', display: 'Confirmed' }] },
    category: [{ coding: [{ system: CONDITION_CATEGORY, code: catCode, display: catDisplay }] }],
    code: { coding: [{ system: SNOMED, code: c.snomed, display: c.display }], text: c.display },
    subject: patient,
    ...(c.encounter ? { encounter: ref<Encounter>('Encounter', `demo-enc-${patientIndex}-${c.encounter}`) } : {}),
    onsetDateTime: c.onset,
    ...(c.abatement ? { abatementDateTime: c.abatement } : {}),
    recordedDate: c.recorded,
    recorder: PHYSICIAN_REF,
  };
}

function buildMedicationRequest(
  m: MedicationRow,
  id: string,
  patient: Reference<Patient>,
  patientIndex: number,
): MedicationRequest {
  return {
    resourceType: 'MedicationRequest',
    id,
    meta: meta(),
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: { coding: [{ system: RXNORM, code: m.rxnorm, display: m.display }], text: m.display },
    subject: patient,
    encounter: ref<Encounter>('Encounter', `demo-enc-${patientIndex}-${m.encounter}`),
    authoredOn: m.authoredOn,
    requester: PHYSICIAN_REF,
    reasonReference: [ref<Condition>('Condition', `demo-cond-${patientIndex}-${m.reason}`)],
    dosageInstruction: [{ text: m.dosage }],
  };
}

// ---------------------------------------------------------------------------
// Bundle
// ---------------------------------------------------------------------------

/** Builds the demo transaction Bundle (a fresh object on every call; same content every time). */
export function buildDemoBundle(): Bundle {
  // Referenced resources first: Organization, Practitioners, then Patients; clinical data last.
  const entries: BundleEntry[] = [entry(buildOrganization()), ...PRACTITIONERS.map((r) => entry(buildPractitioner(r)))];
  const clinical: BundleEntry[] = [];

  PATIENTS.forEach((row, pi) => {
    const p = pi + 1;
    const patientId = DEMO_PATIENT_IDS[pi];
    const name = `${row.given[0]} ${row.family}`;
    const subject = ref<Patient>('Patient', patientId, name);
    entries.push(entry(buildPatient(row, patientId)));

    row.encounters.forEach((enc, ei) => {
      const e = ei + 1;
      const encId = `demo-enc-${p}-${e}`;
      const encounter = ref<Encounter>('Encounter', encId);
      clinical.push(entry(buildEncounter(enc, encId, subject)));

      const vitalsCtx: ObsContext = { subject, encounter, effectiveDateTime: addMinutes(enc.start, 10) };
      for (const key of Object.keys(VITALS) as VitalKey[]) {
        clinical.push(entry(vitalObservation(`demo-obs-${p}-${key}-${e}`, key, enc.vitals[key], vitalsCtx)));
      }
      clinical.push(entry(bpObservation(`demo-obs-${p}-bp-${e}`, enc.vitals.bp, vitalsCtx)));

      const labCtx: ObsContext = { subject, encounter, effectiveDateTime: addMinutes(enc.start, 25) };
      const age = ageInYears(row.birthDate, enc.start);
      for (const [key, value] of Object.entries(enc.labs ?? {}) as [LabKey, number][]) {
        const range = labRange(key, row.gender, age);
        clinical.push(entry(labObservation(`demo-obs-${p}-${key}-${e}`, key, value, range, labCtx)));
      }
    });

    row.conditions.forEach((c, ci) => clinical.push(entry(buildCondition(c, `demo-cond-${p}-${ci + 1}`, subject, p))));
    row.medications.forEach((m, mi) =>
      clinical.push(entry(buildMedicationRequest(m, `demo-medreq-${p}-${mi + 1}`, subject, p))),
    );
  });

  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [...entries, ...clinical],
  };
}
