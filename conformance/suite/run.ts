// One run of the suite against one server: load and rename the data, store it, run every check.
import fs from 'node:fs';
import { checks } from './checks/index.js';
import { HttpClient, type ClientTls } from './http.js';
import { runChecks, storeRunData, type CheckResult } from './suite.js';
import { loadRunData } from './test-data.js';

export interface SuiteOptions {
  /** The DICOMweb service root, e.g. https://127.0.0.1:8443/dicomweb. */
  base: string;
  tls?: ClientTls;
  /** WADO-URI endpoint; default {base}/wado. */
  wadoUri?: string;
  testdata?: string;
  /** Check name -> reason, for the checks this server is expected to fail. */
  expected?: Record<string, string>;
  onResult?: (r: CheckResult) => void;
}

export async function runSuite(options: SuiteOptions): Promise<CheckResult[]> {
  const http = new HttpClient(options.base, options.tls);
  try {
    const data = loadRunData(options.testdata);
    const stored = await storeRunData(http, data);
    const ctx = { http, data, stored, wadoUri: options.wadoUri ?? http.url('/wado') };
    return await runChecks(ctx, checks, options.expected ?? {}, options.onResult);
  } finally {
    http.close();
  }
}

export interface Ledger {
  [server: string]: Record<string, string>;
}

/** The expectations ledger: per server name, the checks expected to fail with the reason. */
export function loadLedger(file: string): Ledger {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Ledger;
}

/** Ledger entries that name no check: a renamed or removed check must not leave a silent expectation behind. */
export function staleEntries(expected: Record<string, string>): string[] {
  const names = new Set(checks.map((c) => c.name));
  return Object.keys(expected).filter((n) => !names.has(n));
}
