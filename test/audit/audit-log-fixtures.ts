// Shared by the audit log tests: keys, a PHI-bearing record, a log of N records with checkpoints.
import { type KeyObject, generateKeyPairSync, randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Test } from 'tap';
import { AuditLog, type AuditLogOptions } from '../../src/audit/audit-log.js';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { AuditEventId, AuditRoleId, type AuditRecord, patientObject, queryObject, studyObject } from '../../src/audit/audit-record.js';
import { tempDir } from '../helpers/temp-dir.js';

export const PATIENT_NAME = 'Doe^Jane Marie';
export const PATIENT_ID = 'PID-7734-SECRET';

export interface Keys {
  auditKey: Buffer;
  signingKey: KeyObject;
  publicKey: KeyObject;
}

export function testKeys(): Keys {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { auditKey: randomBytes(32), signingKey: privateKey, publicKey };
}

export function record(i: number): AuditRecord {
  return {
    eventId: AuditEventId.instancesTransferred,
    action: 'R',
    dateTime: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    outcome: 0,
    participants: [
      { userId: `sha256:client-${i % 3}`, userIsRequestor: true, roleIdCode: AuditRoleId.destination, networkAccessPoint: { typeCode: 2, id: '10.0.0.7' } },
      { userId: 'dicomvault', userIsRequestor: false, roleIdCode: AuditRoleId.source },
    ],
    source: { id: 'dicomvault@test', typeCode: '4' },
    objects: [
      patientObject(i % 2 === 0 ? PATIENT_ID : `OTHER-${i}`, PATIENT_NAME),
      studyObject(`1.2.3.${i}`),
      queryObject('SearchForStudies', `PatientName=${PATIENT_NAME}`),
    ],
  };
}

/**
 * A fresh log folder with `count` records, closed (final checkpoint). `linesOf` 1: appended one after the other,
 * a line each (the v1 form); more: group commits of that many records, a line each (as the server's writer
 * thread appends them).
 */
export async function writtenLog(
  t: Test,
  count: number,
  options: AuditLogOptions = {},
  keys = testKeys(),
  linesOf = 1,
): Promise<{ dir: string; keys: Keys }> {
  const dir = path.join(tempDir(t, 'dicomvault-audit-'), 'audit');
  const log = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0, ...options });
  for (let i = 0; i < count; i += linesOf) {
    if (linesOf === 1) await log.append(record(i));
    else await log.appendCanonical(Array.from({ length: Math.min(linesOf, count - i) }, (_, j) => canonicalJson(record(i + j))));
  }
  await log.close();
  return { dir, keys };
}
