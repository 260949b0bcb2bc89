import type { HttpClient } from './http-client.js';
import type { Report } from './report.js';
import { runPool } from './stats.js';

const CDS_RUNS = 200;

/**
 * A patient-view call with prefetch (the EHR sends the record), sequentially. The server must accept
 * the bench's unsigned calls (CDS_ALLOW_UNSIGNED=true) or the section is skipped.
 */
export async function benchCds(client: HttpClient, report: Report, origin: string): Promise<void> {
  report.section(`6. CDS Hooks patient-view with prefetch, ${CDS_RUNS} sequential calls`);
  const now = Date.now();
  const lab = (code: string, value: number, unit: string, days: number) => ({
    resource: {
      resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code }] }, subject: { reference: 'Patient/bench' },
      effectiveDateTime: new Date(now - days * 86_400_000).toISOString(), valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit },
    },
  });
  const observations = [];
  for (let d = 0; d < 10; d++) {
    observations.push(lab('2093-3', 210 + d, 'mg/dL', 30 + d * 90), lab('2085-9', 45, 'mg/dL', 30 + d * 90), lab('8480-6', 145, 'mm[Hg]', 10 + d * 30), lab('2160-0', 1.4, 'mg/dL', 30 + d * 90),
      lab('4548-4', 6.9, '%', 30 + d * 90), lab('718-7', 12.5, 'g/dL', 30 + d * 90), lab('1920-8', 40, 'U/L', 30 + d * 90), lab('1742-6', 35, 'U/L', 30 + d * 90), lab('777-3', 210, '10*3/uL', 30 + d * 90), lab('3016-3', 2.2, 'm[IU]/L', 30 + d * 90));
  }
  const body = JSON.stringify({
    hook: 'patient-view',
    hookInstance: 'bench',
    context: { userId: 'Practitioner/bench', patientId: 'bench' },
    prefetch: {
      patient: { resourceType: 'Patient', id: 'bench', gender: 'male', birthDate: '1962-04-04' },
      observations: { resourceType: 'Bundle', type: 'searchset', entry: observations },
      conditions: { resourceType: 'Bundle', type: 'searchset', entry: [] },
      medications: { resourceType: 'Bundle', type: 'searchset', entry: [] },
    },
  });
  const url = new URL('/cds-services/patient-risk-summary', origin);
  const probe = await client.postUrl(url, body, 'application/json');
  if (probe.status !== 200) {
    report.note(`skipped: ${url.href} answered ${probe.status} (start the server with CDS_ALLOW_UNSIGNED=true to benchmark CDS Hooks)`);
    return;
  }
  const result = await runPool(CDS_RUNS, 1, async () => {
    const response = await client.postUrl(url, body, 'application/json');
    if (response.status !== 200) throw new Error(`patient-view answered ${response.status}`);
    return response.ms;
  });
  report.note(`${observations.length} Observations in the prefetch`);
  report.latencies('cds.patientView', '  ', result, [50, 95, 99]);
  report.failures('cds.patientView', '  ', result, 'requests');
}
