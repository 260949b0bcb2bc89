import type { Consent, ConsentProvision } from '@medplum/fhirtypes';
import type { FhirRouter } from '../fhir/router.js';

/** More active Consents naming one actor than this is not a realistic record; the rest are still read page by page. */
const PAGE = 500;

/**
 * The patients whose active Consent denies `actor` (e.g. "Practitioner/123") access to their
 * record: a provision of type `deny` that names the actor and is in force now. Found through the
 * Consent `actor` search parameter, which indexes the top-level provision's actors.
 */
export async function patientsDenying(fhir: FhirRouter, actor: string): Promise<string[]> {
  const denied = new Set<string>();
  for (let offset = 0; ; offset += PAGE) {
    const request = fhir.parseSearch('Consent', [['status', 'active'], ['actor', actor], ['_count', String(PAGE)]], false);
    const page = await fhir.repo.search({ ...request, offset });
    for (const stored of page) {
      const consent = stored.resource as Consent;
      const patient = consent.patient?.reference?.match(/^Patient\/([A-Za-z0-9\-.]{1,64})$/)?.[1];
      if (patient && consent.provision && denies(consent.provision, actor, Date.now())) {
        denied.add(patient);
      }
    }
    if (page.length < PAGE) {
      return [...denied];
    }
  }
}

function denies(provision: ConsentProvision, actor: string, now: number): boolean {
  const { start, end } = provision.period ?? {};
  const inForce = (!start || Date.parse(start) <= now) && (!end || Date.parse(end) > now);
  if (!inForce) {
    return false;
  }
  const named = provision.actor?.some((a) => a.reference?.reference === actor) ?? false;
  return (provision.type === 'deny' && named) || (provision.provision ?? []).some((p) => denies(p, actor, now));
}
