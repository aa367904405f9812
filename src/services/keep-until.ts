// A study's keep-until date as the archive stores it (issue 6 item 1, SECURITY.md 5): computed from what the index
// knows of the study (IndexStore.retentionFacts) with the configured rules (policy/retention.ts), then merged with
// the stored value so that an automatic recomputation only ever extends it. Called after every STOW commit
// (store-instances.ts), before every deletion (remove-instances.ts: a rule that got longer since applies at once)
// and by the admin API. Shortening is not possible here: only the explicit, audited admin extension (rule
// 'manual') writes anything else, and it extends too.
//
// Knows nothing about HTTP; no PHI goes to any log from here (the decision's reasons may carry dates derived from
// the birth date: admin API and audit only).

import type { IndexStore } from '../index/index-store.js';
import type { KeepUntil, LifecycleStore, StudyRetention } from '../index/lifecycle-store.js';
import { computeKeepUntil, extendOnly, type RetentionConfig, type RetentionDecision } from '../policy/retention.js';

export interface KeepUntilDeps {
  index: Pick<IndexStore, 'retentionFacts'>;
  lifecycle: Pick<LifecycleStore, 'transaction' | 'getRetention' | 'putRetention'>;
  /** The parsed `retention` configuration. */
  retention: RetentionConfig;
}

/** The rule id of a keep-until date an administrator set (PUT {base}/admin/studies/{study}/retention). */
export const MANUAL_RULE_ID = 'manual';

export const sameKeepUntil = (a: KeepUntil, b: KeepUntil): boolean =>
  a === 'indefinite' ? b === 'indefinite' : b !== 'indefinite' && a.getTime() === b.getTime();

/** "2031-03-15" or "indefinite": how refusals and the admin API name a keep-until date. */
export const formatKeepUntil = (k: KeepUntil): string => (k === 'indefinite' ? 'indefinite' : k.toISOString().slice(0, 10));

/** Has the study's keep-until date passed at `now` (SECURITY.md 5: the first instant it may go is keepUntil)? */
export const isExpired = (k: KeepUntil, now: Date): boolean => k !== 'indefinite' && now.getTime() >= k.getTime();

/** The decision the rules give now, for explanation (admin API); undefined when the index has no such study. */
export function explainKeepUntil(deps: Pick<KeepUntilDeps, 'index' | 'retention'>, studyInstanceUID: string, now: Date): RetentionDecision | undefined {
  const facts = deps.index.retentionFacts(studyInstanceUID);
  return facts ? computeKeepUntil(facts, deps.retention, now) : undefined;
}

/**
 * Recomputes the study's keep-until date and stores the later of it and the stored one (extendOnly). Returns the
 * stored retention afterwards; the stored one unchanged when the study has no live instance (the index has no
 * facts: a removed study keeps the date it had). Writes only when the date or its rules change.
 */
export function recomputeKeepUntil(deps: KeepUntilDeps, studyInstanceUID: string, now: Date = new Date()): StudyRetention | undefined {
  const decision = explainKeepUntil(deps, studyInstanceUID, now);
  return deps.lifecycle.transaction(() => {
    const stored = deps.lifecycle.getRetention(studyInstanceUID);
    if (!decision) return stored;
    const keepUntil = extendOnly(stored?.keepUntil, decision.keepUntil);
    // The rules that set the date: the new decision's when it reaches the date, else the stored ones (the stored
    // date is later: a manual extension or a rule since removed from the configuration).
    const rules = sameKeepUntil(keepUntil, decision.keepUntil) ? decision.rules : stored!.rules;
    if (stored && sameKeepUntil(stored.keepUntil, keepUntil) && sameRules(stored.rules, rules)) return stored;
    const next: StudyRetention = { studyInstanceUID, keepUntil, rules, computedAt: now };
    deps.lifecycle.putRetention(next);
    return next;
  });
}

const sameRules = (a: string[], b: string[]) => a.length === b.length && a.every((r, i) => r === b[i]);

/**
 * The administrator's extension (admin API): `keepUntil` must not be before the stored (or, without one, the
 * computed) date. Returns the new retention, or `{shorter}` with the date it may not go below.
 */
export function extendKeepUntil(
  deps: KeepUntilDeps,
  studyInstanceUID: string,
  keepUntil: KeepUntil,
  now: Date = new Date(),
): { ok: true; retention: StudyRetention } | { ok: false; current: KeepUntil } {
  return deps.lifecycle.transaction(() => {
    const current = recomputeKeepUntil(deps, studyInstanceUID, now);
    if (current && !sameKeepUntil(extendOnly(current.keepUntil, keepUntil), keepUntil)) return { ok: false as const, current: current.keepUntil };
    if (current && sameKeepUntil(current.keepUntil, keepUntil)) return { ok: true as const, retention: current };
    const retention: StudyRetention = { studyInstanceUID, keepUntil, rules: [MANUAL_RULE_ID], computedAt: now };
    deps.lifecycle.putRetention(retention);
    return { ok: true as const, retention };
  });
}
