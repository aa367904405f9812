// The audit records a piece of a test caused: what the app's Auditor wrote while `fn` ran (its records are written
// after the responses, so this waits for them before and after).
import type { AuditRecord } from '../../src/audit/audit-record.js';
import type { TestApp } from './app.js';

export async function auditRecordsOf(app: Pick<TestApp, 'audit' | 'auditor'>, fn: () => Promise<unknown>): Promise<AuditRecord[]> {
  const settle = async () => {
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 5));
    await app.auditor.flush();
  };
  await settle();
  const from = app.audit.size;
  await fn();
  await settle();
  const out: AuditRecord[] = [];
  for await (const e of app.audit.read({ fromN: from })) out.push(e.record);
  return out;
}
