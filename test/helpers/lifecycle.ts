// Issue 6 fixtures: two small studies (one with a StudyDate in 1999, so every rule has ended and the receipt floor
// makes it expired at once; one from 2024, kept until 2031-01-01 by the baseline rule), real Cedar policies with a
// reader that may read but not delete, and STOW through the app.
import fs from 'node:fs';
import path from 'node:path';
import type { Test } from 'tap';
import { CedarPolicyEngine } from '../../src/policy/policy-engine.js';
import { Access } from '../../src/policy/access.js';
import type { TestApp } from './app.js';
import { multipartBody } from './multipart.js';
import { policyInstance, type InstanceSpec } from './policy-dataset.js';
import { person } from './share-policies.js';

export const OLD = { study: '2.25.7100001', patientId: 'PID-OLD-1', studyDate: '19990101' };
export const RECENT = { study: '2.25.7100002', patientId: 'PID-RECENT-2', studyDate: '20240101' };
/** StudyDate 2024-01-01 + P7Y (the baseline rule). */
export const RECENT_KEEP_UNTIL = '2031-01-01';

/** Three instances: two CT in series .1, one MR in series .2. */
export function studyInstances(s: { study: string; patientId: string; studyDate: string }): (InstanceSpec & { bytes: Buffer })[] {
  const specs: InstanceSpec[] = [
    { study: s.study, series: `${s.study}.1`, sop: `${s.study}.1.1`, modality: 'CT', instanceNumber: 1 },
    { study: s.study, series: `${s.study}.1`, sop: `${s.study}.1.2`, modality: 'CT', instanceNumber: 2 },
    { study: s.study, series: `${s.study}.2`, sop: `${s.study}.2.1`, modality: 'MR', instanceNumber: 1, seriesNumber: 2 },
  ].map((x) => ({ ...x, patientId: s.patientId, studyDate: s.studyDate, institution: 'GENERAL HOSPITAL', accessionNumber: 'ACC-1' }));
  return specs.map((spec, i) => ({ ...spec, bytes: policyInstance(spec, i * 10) }));
}

export async function stow(t: Test, app: TestApp['app'], parts: Buffer[]): Promise<void> {
  const { contentType, body } = multipartBody(parts);
  const res = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType, accept: 'application/dicom+json' }, payload: body });
  t.equal(res.statusCode, 200, 'STOW stored everything');
}

const POLICIES = `
@id("admin-all")
permit (principal in Role::"admin", action, resource);

@id("readers-read")
permit (principal in Role::"reader", action in [Action::"search", Action::"read"], resource);
`;

/** Admins may do anything; role "reader" may search and read but not delete; anyone else nothing. */
export function lifecyclePolicyFile(dir: string): string {
  const file = path.join(dir, 'lifecycle-tests.cedar');
  fs.writeFileSync(file, POLICIES);
  return file;
}

export const READER = person('reader-1', ['reader']);
export const OUTSIDER = person('outsider-1');
export const ADMIN = person('admin-1', ['admin']);

export function accessFor(policyFile: string, principal = ADMIN): Access {
  return new Access(CedarPolicyEngine.fromFile(policyFile), principal);
}

/** Files under a folder (the blob store's objects). */
export function filesUnder(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => path.join(d.parentPath, d.name)).sort() : [];
}
