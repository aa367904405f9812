// Readiness (issue 8 item 5): can this process serve DICOMweb requests right now? Each dependency a request
// needs gets one cheap check: the index answers a query, the key provider unwraps, the audit trail can be
// written, the data folder has room for the next STOW. A load balancer stops sending traffic while one fails;
// nothing here restarts anything (liveness is GET /healthz, which checks nothing).
//
// The answer holds check names and fixed texts only: no UID, no path, no byte count (it may be read without
// a principal, and no PHI goes into it in any case).

import { statfs } from 'node:fs/promises';
import type { IndexStore } from '../index/index-store.js';

export const READINESS_CHECKS = ['index', 'keys', 'audit', 'disk'] as const;
export type ReadinessCheck = (typeof READINESS_CHECKS)[number];

export interface CheckResult {
  state: 'ok' | 'failed';
  /** Why it failed, in fixed words (never an error message: those may name files). */
  reason?: string;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<ReadinessCheck, CheckResult>;
  /** The errors behind failed checks, for the caller's log; not part of the answer. */
  errors: Partial<Record<ReadinessCheck, unknown>>;
}

export interface ReadinessDeps {
  index: Pick<IndexStore, 'findInstance'>;
  /** Unwraps a stored study key per KEK version in use (compose.ts Storage.verifyKeys); absent: not checked. */
  verifyKeys?: (() => Promise<unknown>) | undefined;
  /** True once an audit append failed (audit/auditor.ts): the server does not serve until restarted. */
  auditFailed: () => boolean;
  dataDir: string;
  /** 0: the disk is not checked. */
  minFreeDiskBytes: number;
  timeoutMs: number;
  /** Free bytes available to this process on the file system holding `dir` (tests replace it). */
  freeBytes?: (dir: string) => Promise<number>;
}

/** A UID no instance has (the 2.25 root with a zero UUID): the lookup runs the same indexed query as a real one. */
const PROBE_UID = '2.25.0';

export async function freeBytesOf(dir: string): Promise<number> {
  const s = await statfs(dir);
  // bavail, not bfree: blocks reserved for root are not ours (the container runs as an unprivileged user).
  return s.bavail * s.bsize;
}

class CheckTimeout extends Error {
  override name = 'CheckTimeout';
}

/** A check that hangs (a key service that does not answer) fails after `ms` instead of hanging the probe. */
async function within<T>(ms: number, work: () => Promise<T> | T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CheckTimeout(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([Promise.resolve().then(work), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function checkReadiness(deps: ReadinessDeps): Promise<ReadinessReport> {
  const errors: ReadinessReport['errors'] = {};
  const run = async (name: ReadinessCheck, failedReason: string, work: () => Promise<boolean> | boolean, falseReason = failedReason): Promise<CheckResult> => {
    try {
      return (await within(deps.timeoutMs, work)) ? { state: 'ok' } : { state: 'failed', reason: falseReason };
    } catch (e) {
      errors[name] = e;
      return { state: 'failed', reason: e instanceof CheckTimeout ? `no answer within ${deps.timeoutMs} ms` : failedReason };
    }
  };
  const freeBytes = deps.freeBytes ?? freeBytesOf;
  const verifyKeys = deps.verifyKeys;
  // Independent checks, run together: the probe takes as long as the slowest one, not their sum.
  const [index, keys, audit, disk] = await Promise.all([
    run('index', 'the index does not answer', () => {
      deps.index.findInstance(PROBE_UID);
      return true;
    }),
    run('keys', 'the key provider cannot unwrap a stored key', async () => {
      if (verifyKeys) await verifyKeys();
      return true;
    }),
    run('audit', 'the audit trail failed', () => !deps.auditFailed(), 'the audit trail failed: restart the server'),
    run(
      'disk',
      'the free space of the data folder cannot be read',
      async () => deps.minFreeDiskBytes === 0 || (await freeBytes(deps.dataDir)) >= deps.minFreeDiskBytes,
      'the data folder has less free space than ops.minFreeDiskBytes',
    ),
  ]);
  const checks = { index, keys, audit, disk };
  return { ready: Object.values(checks).every((c) => c.state === 'ok'), checks, errors };
}
