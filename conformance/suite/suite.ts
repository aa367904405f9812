// The check model and the runner: setup stores this run's data with STOW-RS, then every check runs in order
// (STOW checks first: they store one more instance) and is compared with the expectations ledger.
import { CheckFailure } from './assert.js';
import type { HttpClient, HttpResponse } from './http.js';
import { multipartRelated } from './multipart.js';
import { allInstances, type RunData } from './test-data.js';

export interface Context {
  http: HttpClient;
  data: RunData;
  /** The WADO-URI endpoint (PS3.18 9): {base}/wado unless told otherwise. */
  wadoUri: string;
  /** Setup's answers: studies[0] and [1] in one POST /studies; studies[2] by POST /studies/{its UID}. */
  stored: { both: HttpResponse; multiframe: HttpResponse };
}

export interface Check {
  /** PS3.18 section first, then the requirement: the name the ledger and the reports use. */
  name: string;
  run(ctx: Context): Promise<void>;
}

export type Outcome = 'pass' | 'fail';

export interface CheckResult {
  name: string;
  outcome: Outcome;
  /** Why it failed (the assertion message or the error). */
  detail?: string;
  /** The ledger's reason when this server is expected to fail the check. */
  expectedFailure?: string;
  /** pass/fail as expected, or not: a difference makes the CLI exit non-zero. */
  asExpected: boolean;
}

/** Setup: PS3.18 10.5 STOW-RS of the run's data (its answers are what the 10.5 checks look at first). */
export async function storeRunData(http: HttpClient, data: RunData): Promise<Context['stored']> {
  const [s1, s2, mf] = data.studies;
  const stow = (path: string, parts: Buffer[]) => {
    const { contentType, body } = multipartRelated(parts);
    return http.request('POST', path, { headers: { 'content-type': contentType, accept: 'application/dicom+json' }, body });
  };
  const both = await stow('/studies', [...allInstances(s1), ...allInstances(s2)].map((i) => i.bytes));
  const multiframe = await stow(`/studies/${mf.uid}`, allInstances(mf).map((i) => i.bytes));
  return { both, multiframe };
}

/** Runs every check once, in order; `expected` maps check names to the reasons they are expected to fail. */
export async function runChecks(ctx: Context, checks: Check[], expected: Record<string, string>, onResult?: (r: CheckResult) => void): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of checks) {
    let outcome: Outcome = 'pass';
    let detail: string | undefined;
    try {
      await check.run(ctx);
    } catch (e) {
      outcome = 'fail';
      detail = e instanceof CheckFailure ? e.message : `error: ${e instanceof Error ? e.message : String(e)}`;
    }
    const expectedFailure = expected[check.name];
    const result: CheckResult = { name: check.name, outcome, asExpected: (outcome === 'fail') === (expectedFailure !== undefined) };
    if (detail !== undefined) result.detail = detail;
    if (expectedFailure !== undefined) result.expectedFailure = expectedFailure;
    results.push(result);
    onResult?.(result);
  }
  return results;
}

/** One line per check: PASS, FAIL (unexpected), XFAIL (expected failure), XPASS (expected to fail but passed). */
export function formatResult(r: CheckResult): string {
  if (r.outcome === 'pass') return r.expectedFailure === undefined ? `PASS  ${r.name}` : `XPASS ${r.name} (ledger expected a failure: ${r.expectedFailure})`;
  return r.expectedFailure === undefined ? `FAIL  ${r.name}: ${r.detail}` : `XFAIL ${r.name}: ${r.detail} (expected: ${r.expectedFailure})`;
}
