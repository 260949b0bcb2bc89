import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

type IssueCode = OperationOutcomeIssue['code'];

/**
 * An error that carries its HTTP status and the OperationOutcome to send.
 * Everything the server rejects is thrown as one of these; the error boundary turns anything
 * else into a 500 without leaking a stack trace.
 */
export class FhirError extends Error {
  constructor(
    readonly status: number,
    readonly issues: OperationOutcomeIssue[],
    readonly headers: Record<string, string> = {},
  ) {
    super(issues.map((i) => i.diagnostics ?? i.details?.text ?? i.code).join('; '));
  }

  get outcome(): OperationOutcome {
    return { resourceType: 'OperationOutcome', issue: this.issues };
  }
}

export function issue(code: IssueCode, text: string, expression?: string): OperationOutcomeIssue {
  return {
    severity: 'error',
    code,
    details: { text },
    ...(expression ? { expression: [expression] } : {}),
  };
}

export const badRequest = (text: string, expression?: string): FhirError =>
  new FhirError(400, [issue('invalid', text, expression)]);
export const notFound = (text: string): FhirError => new FhirError(404, [issue('not-found', text)]);
export const gone = (text: string): FhirError => new FhirError(410, [issue('deleted', text)]);
export const preconditionFailed = (text: string): FhirError => new FhirError(412, [issue('conflict', text)]);
export const notSupported = (text: string): FhirError => new FhirError(400, [issue('not-supported', text)]);

export function informational(text: string): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', details: { text } }] };
}

export function outcomeOf(issues: OperationOutcomeIssue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues };
}

export const forbidden = (text: string): FhirError =>
  new FhirError(403, [issue('forbidden', text)], { 'WWW-Authenticate': 'Bearer realm="carelens", error="insufficient_scope"' });
