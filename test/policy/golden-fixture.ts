// The golden randomised test of the policy engine (SECURITY.md 6: "golden tests compare SQL-filtered results
// with per-row isAuthorized"): for a fixed-seed population of principals and studies, every Study action and
// break-glass off/on, the compiled study condition and Cedar's own decision must agree on every study.
//
// 60 principals x 50 studies x 5 actions x 2 contexts = 30,000 Cedar decisions at ~0.4 ms: split into shards
// (golden/shard-NN.test.ts, 20 principals each) so that every file stays well under 20 s and tap
// runs them side by side.

import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { RequestContext } from '../../src/policy/access.js';
import { STUDY_ACTIONS } from '../../src/policy/cedar-schema.js';
import { CedarPolicyEngine } from '../../src/policy/policy-engine.js';
import type { StudyAttributes } from '../../src/policy/study-attributes.js';
import { evaluateStudyCondition } from '../../src/policy/study-condition.js';
import type { Principal } from '../../src/security/principal.js';
import { tempDir } from '../helpers/temp-dir.js';
import { mulberry32 } from '../helpers/prng.js';

export const PRINCIPALS = 60;
export const STUDIES = 50;
export const SHARDS = 3;
const SEED = 0x5eed_d1c0;

const prng = mulberry32;

// Overlapping vocabularies, '' and 0 included: the interesting cases are equal, different and empty values.
const ROLES = ['admin', 'radiology', 'physician', 'modality-gateway', 'auditor', 'clerk'];
const INSTITUTIONS = ['', 'GENERAL', 'ST MARY', 'NORTH'];
const STUDY_INSTITUTIONS = [...INSTITUTIONS, 'SOUTH', 'A'];
const PHYSICIANS = ['', 'SMITH^JOHN', 'DOE^JANE', 'NG^AN'];
const STUDY_PHYSICIANS = [...PHYSICIANS, 'ROE^RICHARD'];
const NPIS = ['', '123', '456', 'A1'];
const SITES = ['A', 'B', 'GENERAL', 'C'];
const MODALITIES = ['CT', 'MR', 'US', 'SR', 'OT', 'PX'];
const LABELS = ['vip', 'research', 'teaching'];
const ACCESSIONS = ['', 'A1', 'B', '123', 'ACC-9'];
const PATIENT_IDS = ['', 'P1', 'P22', 'X9', 'p3'];
// Every bound the generated policies compare with is among them (a test of < against <= needs the bound itself).
const DATES = [0, 19991231, 20000101, 20200101, 20231015, 20240101, 20240229, 20251231];
const CONFIDENTIALITY = ['', 'N', 'R', 'V'];
const UIDS = ['1.2.3', '1.2.4', '1.2.5', '1.2.6'];
const BREAK_GLASS_REASONS = ['trauma bay 3', 'code blue'];

/** Policies beyond the examples, one or more per operator the compiler understands. */
export const GENERATED_POLICIES = `
@id("gen-date-range")
permit (principal in Role::"auditor", action in [Action::"search", Action::"read"], resource)
when { resource.studyDate >= 20200101 && 20240101 > resource.studyDate };

@id("gen-sites")
permit (principal, action == Action::"read", resource)
when { principal.sites.contains(resource.institution) || ["A1", "B"].contains(resource.accessionNumber) };

@id("gen-like")
permit (principal, action == Action::"search", resource)
when { resource.patientId like "P*" && principal.npi != "" }
unless { resource.modalities.isEmpty() };

@id("gen-if-then-else")
permit (principal in Role::"physician", action == Action::"delete", resource)
when {
  if resource.labels.containsAny(["research", "teaching"])
  then resource.studyDate < 20000101 || resource.studyDate <= 0
  else resource.confidentiality != "R" && resource.studyDate > 0
};

@id("gen-uid-set")
permit (principal, action == Action::"share", resource)
when { principal.kind == "token" && resource in [Study::"1.2.3", Study::"1.2.4"] };

@id("gen-uid-scope")
permit (principal, action, resource == Study::"1.2.5")
when { principal.npi == "123" };

@id("gen-forbid-delete")
forbid (principal, action == Action::"delete", resource)
when {
  resource.labels.containsAll(["research", "teaching"]) ||
  (resource has accessionNumber && resource.accessionNumber == principal.npi)
};

@id("gen-store-sites")
permit (principal, action == Action::"store", resource)
when { principal.sites.containsAny(["A"]) && ["MR", "US"].containsAny(resource.modalities) && resource.studyDate != 0 };

@id("gen-break-glass-reason")
permit (principal in Role::"clerk", action == Action::"search", resource)
when { context.breakGlassReason like "*trauma*" && resource.institution != "" && resource.studyDate >= 20231015 };

@id("gen-forbid-clerk-research")
forbid (principal in Role::"clerk", action, resource is Study)
when { !resource.labels.isEmpty() && !(resource.labels.contains("teaching")) };
`;

function pick<T>(r: () => number, items: readonly T[]): T {
  return items[Math.floor(r() * items.length)]!;
}

function subset<T>(r: () => number, items: readonly T[], p: number): T[] {
  return items.filter(() => r() < p);
}

export interface GoldenPopulation {
  principals: Principal[];
  studies: StudyAttributes[];
}

export function population(): GoldenPopulation {
  const r = prng(SEED);
  const principals: Principal[] = [];
  for (let i = 0; i < PRINCIPALS; i++) {
    principals.push({
      kind: r() < 0.7 ? 'certificate' : 'token',
      id: `urn:dicomvault:principal:p${i}`,
      roles: subset(r, ROLES, 0.25),
      attributes: { institution: pick(r, INSTITUTIONS), referringPhysician: pick(r, PHYSICIANS), npi: pick(r, NPIS), sites: subset(r, SITES, 0.3) },
    });
  }
  const studies: StudyAttributes[] = [];
  for (let i = 0; i < STUDIES; i++) {
    studies.push({
      studyInstanceUID: r() < 0.4 ? pick(r, UIDS) : `2.25.${1000 + i}`,
      institution: pick(r, STUDY_INSTITUTIONS),
      referringPhysician: pick(r, STUDY_PHYSICIANS),
      modalities: subset(r, MODALITIES, 0.3).sort(),
      accessionNumber: pick(r, ACCESSIONS),
      patientId: pick(r, PATIENT_IDS),
      studyDate: pick(r, DATES),
      labels: subset(r, LABELS, 0.25).sort(),
      confidentiality: pick(r, CONFIDENTIALITY),
    });
  }
  return { principals, studies };
}

/** The examples plus the generated policies, in one file. */
export function goldenPolicyText(): string {
  return fs.readFileSync(path.join(import.meta.dirname, '../../policies/examples.cedar'), 'utf8') + GENERATED_POLICIES;
}

/** Runs the agreement check for principals [shard * PRINCIPALS / SHARDS, (shard + 1) * PRINCIPALS / SHARDS). */
export function runGoldenShard(shard: number): void {
  t.test(`golden shard ${shard + 1}/${SHARDS}: studyCondition agrees with decide on every study`, async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'golden.cedar');
    fs.writeFileSync(file, goldenPolicyText());
    const engine = CedarPolicyEngine.fromFile(file);
    const { principals, studies } = population();
    const from = (shard * PRINCIPALS) / SHARDS;
    const to = ((shard + 1) * PRINCIPALS) / SHARDS;

    let checked = 0;
    let allowed = 0;
    const mismatches: string[] = [];
    const determining = new Set<string>();
    for (const principal of principals.slice(from, to)) {
      for (const action of STUDY_ACTIONS) {
        for (const reason of ['', BREAK_GLASS_REASONS[principals.indexOf(principal) % 2]!]) {
          const context: RequestContext = { breakGlassReason: reason };
          const condition = engine.studyCondition(principal, action, context);
          for (const study of studies) {
            const decision = engine.decide(principal, action, { study }, context);
            checked++;
            if (decision.allowed) allowed++;
            decision.policies.forEach((p) => determining.add(p));
            if (evaluateStudyCondition(condition, study) !== decision.allowed && mismatches.length < 5) {
              mismatches.push(JSON.stringify({ principal: { id: principal.id, kind: principal.kind, roles: principal.roles, ...principal.attributes }, action, reason, study, decision, condition }));
            }
          }
        }
      }
    }
    t.same(mismatches, [], 'no study where the condition and the decision differ');
    t.equal(checked, (to - from) * STUDIES * STUDY_ACTIONS.length * 2);
    // Not vacuous: both outcomes occur, and many different policies decide.
    t.ok(allowed > checked * 0.05 && allowed < checked * 0.95, `allowed ${allowed} of ${checked}`);
    t.ok(determining.size >= 6, `determining policies: ${[...determining].sort().join(', ')}`);
  });
}
