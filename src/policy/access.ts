// The policy enforcement point the services use (SECURITY.md 6): one Access per request, bound to its principal
// and context. Services ask it; they never see Cedar, HTTP or the principal's credentials.
//
// Share principals are not handed to Cedar: a share session may read exactly the study of its grant (and
// download it only with the download scope), whatever the policies say. A policy mistake can then never
// widen a link, and a link never reaches an action other than search and read.

import type { Principal } from '../security/principal.js';
import type { Action } from './actions.js';
import type { StudyAttributes } from './study-attributes.js';
import { FALSE, type StudyCondition } from './study-condition.js';

export interface RequestContext {
  /** The reason given for emergency (break-glass) access; '' when none was asked for. */
  breakGlassReason: string;
}

export const NO_CONTEXT: RequestContext = Object.freeze({ breakGlassReason: '' });

/** The resource of a decision: one study, or the archive itself (admin, and actions that name no study). */
export type PolicyResource = { study: StudyAttributes } | 'archive';

export interface Decision {
  allowed: boolean;
  /** Ids of the policies that determined the decision (Cedar's diagnostics.reason); empty on default deny. */
  policies: string[];
}

/** The policy decision point: policy/policy-engine.ts (Cedar). */
export interface PolicyDecider {
  decide(principal: Principal, action: Action, resource: PolicyResource, context: RequestContext): Decision;
  /**
   * The studies `action` is allowed on for this principal and context, as a condition (partial evaluation with
   * the study unknown). Must agree with decide() on every study; anything it cannot express is FALSE.
   */
  studyCondition(principal: Principal, action: Action, context: RequestContext): StudyCondition;
}

/** Called when an allowed decision carried a break-glass reason (the audit trail records every one). */
export type BreakGlassListener = (event: { principal: Principal; action: Action; studyInstanceUID?: string; reason: string; policies: string[] }) => void;

export class Access {
  constructor(
    private readonly decider: PolicyDecider,
    readonly principal: Principal,
    readonly context: RequestContext = NO_CONTEXT,
    private readonly onBreakGlass?: BreakGlassListener,
  ) {}

  /** May the principal do `action` on this study? */
  allows(action: Action, study: StudyAttributes): boolean {
    const grant = this.principal.share;
    if (this.principal.kind === 'share') {
      if (!grant) return false;
      return (action === 'search' || action === 'read') && study.studyInstanceUID === grant.studyInstanceUID;
    }
    const decision = this.decider.decide(this.principal, action, { study }, this.context);
    if (decision.allowed) this.noteBreakGlass(action, decision.policies, study.studyInstanceUID);
    return decision.allowed;
  }

  /** May the principal download whole objects (WADO-RS retrieve, WADO-URI application/dicom) of this study, beyond viewing it? */
  allowsDownload(study: StudyAttributes): boolean {
    if (this.principal.kind === 'share') return this.principal.share?.scope === 'download' && this.allows('read', study);
    return this.allows('read', study);
  }

  /** May the principal do `action` on the archive as a whole (admin endpoints)? */
  allowsOnArchive(action: Action): boolean {
    if (this.principal.kind === 'share') return false;
    const decision = this.decider.decide(this.principal, action, 'archive', this.context);
    if (decision.allowed) this.noteBreakGlass(action, decision.policies);
    return decision.allowed;
  }

  /** The studies a search sees: compiled into the index query, never applied after it. */
  studyCondition(action: 'search' | 'read'): StudyCondition {
    if (this.principal.kind === 'share') {
      const grant = this.principal.share;
      return grant ? { kind: 'eq', attribute: 'studyInstanceUID', value: grant.studyInstanceUID } : FALSE;
    }
    const condition = this.decider.studyCondition(this.principal, action, this.context);
    // A search with a break-glass reason that may match any study is a break-glass use like an allowed read:
    // logged too (which policies matched is not known before the rows are; hence no policy ids).
    if (!(condition.kind === 'const' && !condition.value)) this.noteBreakGlass(action, []);
    return condition;
  }

  private noteBreakGlass(action: Action, policies: string[], studyInstanceUID?: string): void {
    if (this.context.breakGlassReason === '' || !this.onBreakGlass) return;
    this.onBreakGlass({ principal: this.principal, action, studyInstanceUID, reason: this.context.breakGlassReason, policies });
  }
}

/** What the admin API needs of the policy engine besides decisions (policy/policy-engine.ts). */
export interface PolicyAdmin extends PolicyDecider {
  readonly file: string;
  readonly version: number;
  text(): string;
  /** Errors of a candidate policy text against the schema; empty when valid. */
  validateText(text: string): string[];
  /** Validates, writes the file atomically and puts the new policies in force; invalid text changes nothing. */
  replace(text: string): { ok: true; version: number } | { ok: false; errors: string[] };
  /** Re-reads the file; a bad file keeps the policies in force. */
  reload(): { ok: true; version: number } | { ok: false; errors: string[] };
}
