// The policy decision point (SECURITY.md 6): Cedar, in-process (@cedar-policy/cedar-wasm, pinned; its bare
// specifier's ESM build cannot load the .wasm on Node 20, hence `/nodejs`).
//
// - One policy file, validated against policy/cedar-schema.ts in strict mode. A file that does not parse or
//   validate never becomes active: at start the server refuses to start (PolicyLoadError), on reload/replace
//   the old policies stay in force and the errors are returned and logged.
// - decide(): statefulIsAuthorized on the preparsed policy set of the active version (~0.4 ms, against ~8 ms
//   for isAuthorized parsing text each call). Default deny; any Cedar error is a deny.
//   Decisions are cached (bounded LRU, cleared when the policies change): the key is the policy set id and
//   the exact request and entities Cedar is given, serialized, so two requests share an entry only when Cedar
//   would see the same input (nothing else goes in: no time, no address). A STOW of many instances into one study
//   asks the same question once per instance (issue 8: ~0.4 ms each).
// - studyCondition(): isAuthorizedPartial with the study unknown, residuals -> StudyCondition
//   (policy/residual-to-condition.ts), cached per principal/action/context/version (bounded LRU).
// - Policy ids are the `@id("...")` annotations where present (unique in a file), else Cedar's positional
//   `policyN` (N = position in the file, from 0): decisions name them, and so does the audit trail.
//
// Logs carry file names, line numbers, policy ids and counts, never principal or study values (PHI), and
// Cedar messages with their quoted literals masked.

// First: a V8 flag that must be set before Cedar's Wasm is loaded and called (see the module).
import './v8-workaround.js';
import fs from 'node:fs';
import {
  isAuthorizedPartial,
  policySetTextToParts,
  policyToJson,
  preparsePolicySet,
  preparseSchema,
  statefulIsAuthorized,
  validate,
  type DetailedError,
  type EntityUidJson,
  type PolicyJson,
} from '@cedar-policy/cedar-wasm/nodejs';
import type { Logger } from '../logger.js';
import type { Principal } from '../security/principal.js';
import { replaceFileDurably } from '../storage/durable-file.js';
import type { Decision, PolicyDecider, PolicyResource, RequestContext } from './access.js';
import type { Action } from './actions.js';
import { actionUid, archiveEntity, ARCHIVE_UID, cedarContext, studyEntity, studyUid, userEntity, userUid } from './cedar-entities.js';
import { CEDAR_SCHEMA, STUDY_ACTIONS } from './cedar-schema.js';
import { residualsToCondition } from './residual-to-condition.js';
import { FALSE, type StudyCondition } from './study-condition.js';
import type { StudyAttributes } from './study-attributes.js';

/** The policy file cannot be used: it does not parse, does not validate against the schema, or cannot be read. */
export class PolicyLoadError extends Error {
  constructor(
    readonly file: string,
    readonly errors: string[],
  ) {
    super(`policy file ${file} is not valid:\n${errors.map((e) => `  ${e}`).join('\n')}`);
    this.name = 'PolicyLoadError';
  }
}

/** One policy of the active set, as admins see it. */
export interface PolicySummary {
  id: string;
  effect: 'permit' | 'forbid';
  /** 1-based line of the policy's first character in the file. */
  line: number;
}

export type LoadResult = { ok: true; version: number; warnings: string[] } | { ok: false; errors: string[] };

const DENY: Decision = Object.freeze({ allowed: false, policies: [] as string[] }) as Decision;
const SCHEMA_NAME = 'dicomvault-schema';
const CONDITION_CACHE_ENTRIES = 1000;
/** Decisions kept (a key is ~0.5-1 KB: a few MB at most). */
const DECISION_CACHE_ENTRIES = 4096;

let schemaPrepared = false;
let engines = 0;

function prepareSchema(): void {
  if (schemaPrepared) return;
  const answer = preparseSchema(SCHEMA_NAME, CEDAR_SCHEMA);
  // The schema is ours and a test parses it: this failing is a build defect.
  if (answer.type !== 'success') throw new Error(`the Cedar schema does not parse: ${answer.errors.map((e) => e.message).join('; ')}`);
  schemaPrepared = true;
}

interface ParsedPolicy extends PolicySummary {
  json: PolicyJson;
  /**
   * The policy's own source text: what Cedar is given to evaluate. Not `json`: a Long literal beyond 2^53 does not
   * survive the JSON form as a JS number, and Cedar then refuses the set that validated.
   */
  source: string;
}

interface ActivePolicies {
  version: number;
  text: string;
  /** The preparsed policy set id (unique per engine and version). */
  setId: string;
  policies: ParsedPolicy[];
  /** For partial evaluation: the policies (source text by id) whose action scope can match each Study action. */
  byAction: Map<Action, Record<string, string>>;
}

type Checked = { ok: true; policies: ParsedPolicy[]; warnings: string[] } | { ok: false; errors: string[] };

/**
 * Parses and validates policy text against the schema. Error messages are `<source>:<line>:<column>: policy
 * '<id>': <message>` (or without the policy where Cedar does not name one).
 */
export function checkPolicyText(text: string, source: string): Checked {
  prepareSchema();
  const answer = validate({ schema: CEDAR_SCHEMA, policies: { staticPolicies: text }, validationSettings: { mode: 'strict' } });
  if (answer.type === 'failure') return { ok: false, errors: answer.errors.map((e) => formatError(text, source, e)) };

  const parts = policySetTextToParts(text);
  if (parts.type === 'failure') return { ok: false, errors: parts.errors.map((e) => formatError(text, source, e)) };
  if (parts.policy_templates.length > 0) return { ok: false, errors: [`${source}: policy templates (?principal, ?resource) are not supported`] };

  // policySetTextToParts returns each policy's own source text, sorted by positional id as strings
  // ("policy10" before "policy2"); its offset in the file gives its position, hence its positional id and line.
  const located = locateParts(text, parts.policies);
  if (!located) return { ok: false, errors: [`${source}: the policies could not be located in the file`] };
  const policies: ParsedPolicy[] = [];
  const errors: string[] = [];
  const positionalToId = new Map<string, string>();
  const seen = new Map<string, number>();
  located.forEach(({ policy, offset }, index) => {
    const json = policyToJson(policy);
    const line = lineColumn(text, Buffer.byteLength(text.slice(0, offset))).line;
    if (json.type === 'failure') {
      errors.push(...json.errors.map((e) => `${source}:${line}: ${e.message}`));
      return;
    }
    const annotated = json.json.annotations?.['id'];
    const id = annotated !== undefined && annotated !== '' ? annotated : `policy${index}`;
    positionalToId.set(`policy${index}`, id);
    const previous = seen.get(id);
    if (previous !== undefined) errors.push(`${source}:${line}: policy '${id}': the id is already used by the policy on line ${previous}`);
    seen.set(id, line);
    policies.push({ id, effect: json.json.effect, line, json: json.json, source: policy });
  });
  for (const v of answer.validationErrors) {
    errors.push(formatError(text, source, v.error, positionalToId.get(v.policyId) ?? v.policyId));
  }
  if (errors.length > 0) return { ok: false, errors };
  const warnings = answer.validationWarnings.map((v) => formatError(text, source, v.error, positionalToId.get(v.policyId) ?? v.policyId));
  return { ok: true, policies, warnings };
}

function locateParts(text: string, parts: string[]): { policy: string; offset: number }[] | undefined {
  const used = new Set<number>();
  const located: { policy: string; offset: number }[] = [];
  for (const policy of parts) {
    let offset = text.indexOf(policy);
    while (offset !== -1 && used.has(offset)) offset = text.indexOf(policy, offset + 1);
    if (offset === -1) return undefined;
    used.add(offset);
    located.push({ policy, offset });
  }
  return located.sort((a, b) => a.offset - b.offset);
}

function formatError(text: string, source: string, e: DetailedError, policyId?: string): string {
  const loc = e.sourceLocations?.[0];
  const where = loc ? `${source}:${lineColumn(text, loc.start).line}:${lineColumn(text, loc.start).column}` : source;
  const message = e.message.replace(/^for policy `[^`]*`, /, '').replace(/^failed to parse policies from string: /, '');
  const details = [loc?.label, e.help].filter((d): d is string => typeof d === 'string' && d !== '');
  return `${where}: ${policyId !== undefined ? `policy '${policyId}': ` : ''}${message}${details.length > 0 ? ` (${details.join('; ')})` : ''}`;
}

/** Cedar's source locations are byte offsets into the UTF-8 text. */
function lineColumn(text: string, byteOffset: number): { line: number; column: number } {
  const before = Buffer.from(text, 'utf8').subarray(0, byteOffset).toString('utf8');
  const lines = before.split('\n');
  return { line: lines.length, column: lines[lines.length - 1]!.length + 1 };
}

/** Masks double-quoted literals (they may be names or ids) before a message goes to the application log. */
function forLog(message: string): string {
  return message.replace(/"(?:[^"\\]|\\.)*"/g, '"…"');
}

/** Does this action scope admit `action`? Unknown shapes are kept (partial evaluation then decides). */
function scopeAdmits(scope: PolicyJson['action'], action: Action): boolean {
  const matches = (uid: EntityUidJson): boolean => {
    const inner = '__entity' in uid ? uid.__entity : uid;
    return inner.type === 'Action' && inner.id === action;
  };
  if (scope.op === '==' && 'entity' in scope) return matches(scope.entity);
  if (scope.op === 'in') {
    if ('entity' in scope) return matches(scope.entity);
    if ('entities' in scope) return scope.entities.some(matches);
  }
  return true;
}

export class CedarPolicyEngine implements PolicyDecider {
  readonly file: string;
  private readonly logger: Logger | undefined;
  private readonly instance = ++engines;
  private active!: ActivePolicies;
  private readonly conditions = new Map<string, StudyCondition>();
  /** Successful decisions by policy set id + Cedar's input (decisionKey); oldest first. */
  private readonly decisions = new Map<string, Decision>();

  private constructor(file: string, logger: Logger | undefined) {
    this.file = file;
    this.logger = logger;
  }

  /** Loads and validates the policy file; throws PolicyLoadError naming the file, policy and line on any problem. */
  static fromFile(file: string, logger?: Logger): CedarPolicyEngine {
    const engine = new CedarPolicyEngine(file, logger);
    const text = readPolicyFile(file);
    if (typeof text !== 'string') throw new PolicyLoadError(file, text.errors);
    const checked = checkPolicyText(text, file);
    if (!checked.ok) throw new PolicyLoadError(file, checked.errors);
    engine.activate(text, checked.policies);
    engine.logLoaded(checked.warnings);
    return engine;
  }

  /** The version of the active policies: 1 at start, +1 on every successful reload or replace. */
  get version(): number {
    return this.active.version;
  }

  /** The text of the active policies. */
  text(): string {
    return this.active.text;
  }

  /** The active policies, in file order. */
  policies(): PolicySummary[] {
    return this.active.policies.map(({ id, effect, line }) => ({ id, effect, line }));
  }

  /** Errors of `text` as a policy file (empty when it would load). */
  validateText(text: string): string[] {
    const checked = checkPolicyText(text, this.file);
    return checked.ok ? [] : checked.errors;
  }

  /** Re-reads the file. A bad file leaves the active policies in force; the failure is logged and returned. */
  reload(): LoadResult {
    const text = readPolicyFile(this.file);
    if (typeof text !== 'string') return this.rejected('reload', text.errors);
    const checked = checkPolicyText(text, this.file);
    if (!checked.ok) return this.rejected('reload', checked.errors);
    this.activate(text, checked.policies);
    this.logLoaded(checked.warnings);
    return { ok: true, version: this.version, warnings: checked.warnings };
  }

  /** Validates `text`, then writes it to the file atomically (temp, fsync, rename, fsync folder) and activates it. */
  replace(text: string): LoadResult {
    const checked = checkPolicyText(text, this.file);
    if (!checked.ok) return this.rejected('replace', checked.errors);
    try {
      replaceFileDurably(this.file, Buffer.from(text, 'utf8'));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'unknown error';
      return this.rejected('replace', [`${this.file}: cannot be written (${code})`]);
    }
    this.activate(text, checked.policies);
    this.logLoaded(checked.warnings);
    return { ok: true, version: this.version, warnings: checked.warnings };
  }

  decide(principal: Principal, action: Action, resource: PolicyResource, context: RequestContext): Decision {
    if (principal.kind === 'share') return DENY; // policy/access.ts handles share sessions; never Cedar.
    const { setId, version } = this.active;
    const study = resource === 'archive' ? undefined : resource.study;
    const input = {
      principal: userUid(principal),
      action: actionUid(action),
      resource: study ? studyUid(study) : ARCHIVE_UID,
      context: cedarContext(context),
      entities: [userEntity(principal), study ? studyEntity(study) : archiveEntity()],
    };
    const key = decisionKey(setId, input, study);
    if (key !== undefined) {
      const cached = this.decisions.get(key);
      if (cached !== undefined) {
        this.decisions.delete(key);
        this.decisions.set(key, cached);
        return { allowed: cached.allowed, policies: [...cached.policies] };
      }
    }
    let answer: ReturnType<typeof statefulIsAuthorized>;
    try {
      answer = statefulIsAuthorized({
        ...input,
        preparsedPolicySetId: setId,
        preparsedSchemaName: SCHEMA_NAME,
        // An action on the wrong resource type (admin on a study, read on the archive) is a failure: deny.
        validateRequest: true,
      });
    } catch (e) {
      this.logger?.error({ err: e, policyVersion: version, action }, 'policy evaluation failed: denied');
      return DENY;
    }
    if (answer.type === 'failure') {
      // Messages can quote entity ids (study UIDs): not logged.
      this.logger?.warn({ policyVersion: version, action, errors: answer.errors.length }, 'policy request rejected by Cedar: denied');
      return DENY;
    }
    const { decision, diagnostics } = answer.response;
    if (diagnostics.errors.length > 0) {
      this.logger?.warn({ policyVersion: version, action, policies: diagnostics.errors.map((e) => e.policyId) }, 'policies failed to evaluate and were skipped');
    }
    const result: Decision = { allowed: decision === 'allow', policies: [...diagnostics.reason] };
    // Only clean answers are kept: a failure or a policy that errored is asked again, and logged again, each time.
    // Denies are kept like allows: callers audit every refusal whether or not Cedar was asked.
    if (key !== undefined && diagnostics.errors.length === 0) {
      this.decisions.set(key, { allowed: result.allowed, policies: [...result.policies] });
      if (this.decisions.size > DECISION_CACHE_ENTRIES) this.decisions.delete(this.decisions.keys().next().value!);
    }
    return result;
  }

  /** How many decisions are cached (tests). */
  get cachedDecisions(): number {
    return this.decisions.size;
  }

  studyCondition(principal: Principal, action: Action, context: RequestContext): StudyCondition {
    if (principal.kind === 'share') return FALSE;
    if (!(STUDY_ACTIONS as readonly string[]).includes(action)) return FALSE; // admin acts on the archive only
    const active = this.active;
    const a = principal.attributes;
    const key = JSON.stringify([active.version, principal.id, principal.kind, principal.roles, a.institution, a.referringPhysician, a.npi, a.sites, action, context.breakGlassReason]);
    const cached = this.conditions.get(key);
    if (cached !== undefined) {
      this.conditions.delete(key);
      this.conditions.set(key, cached);
      return cached;
    }
    const condition = this.compileCondition(active, principal, action, context);
    this.conditions.set(key, condition);
    if (this.conditions.size > CONDITION_CACHE_ENTRIES) this.conditions.delete(this.conditions.keys().next().value!);
    return condition;
  }

  private compileCondition(active: ActivePolicies, principal: Principal, action: Action, context: RequestContext): StudyCondition {
    const policies = active.byAction.get(action);
    if (!policies || Object.keys(policies).length === 0) return FALSE;
    let answer: ReturnType<typeof isAuthorizedPartial>;
    try {
      answer = isAuthorizedPartial({
        principal: userUid(principal),
        action: actionUid(action),
        resource: null,
        context: cedarContext(context),
        policies: { staticPolicies: policies },
        entities: [userEntity(principal)],
      });
    } catch (e) {
      this.logger?.error({ err: e, policyVersion: active.version, action }, 'partial policy evaluation failed: no studies');
      return FALSE;
    }
    if (answer.type === 'failure') {
      this.logger?.warn({ policyVersion: active.version, action, errors: answer.errors.length }, 'partial policy evaluation rejected: no studies');
      return FALSE;
    }
    const conversion = residualsToCondition(answer.response);
    if (conversion.failedForbid) {
      this.logger?.warn({ policyVersion: active.version, action, policy: conversion.failedForbid.id, reason: forLog(conversion.failedForbid.reason) }, 'a forbid policy cannot be compiled to a study condition: no studies');
    }
    for (const dropped of conversion.droppedPermits) {
      this.logger?.warn({ policyVersion: active.version, action, policy: dropped.id, reason: forLog(dropped.reason) }, 'a permit policy cannot be compiled to a study condition: it allows no studies in searches');
    }
    return conversion.condition;
  }

  private activate(text: string, policies: ParsedPolicy[]): void {
    prepareSchema();
    const previous = this.active as ActivePolicies | undefined;
    const version = (previous?.version ?? 0) + 1;
    const setId = `dicomvault-${this.instance}-v${version}`;
    const record = Object.fromEntries(policies.map((p) => [p.id, p.source]));
    const answer = preparsePolicySet(setId, { staticPolicies: record });
    // checkPolicyText has parsed these very policies: a failure here is a Cedar defect, not a bad file.
    if (answer.type !== 'success') throw new Error(`Cedar rejected a validated policy set: ${answer.errors.map((e) => forLog(e.message)).join('; ')}`);
    const byAction = new Map<Action, Record<string, string>>();
    for (const action of STUDY_ACTIONS) {
      byAction.set(action, Object.fromEntries(policies.filter((p) => scopeAdmits(p.json.action, action)).map((p) => [p.id, p.source])));
    }
    this.active = { version, text, setId, policies, byAction };
    this.conditions.clear();
    this.decisions.clear();
    // Cedar keeps preparsed sets until the process ends; emptying the old one frees what it held.
    if (previous) preparsePolicySet(previous.setId, { staticPolicies: {} });
  }

  private rejected(operation: 'reload' | 'replace', errors: string[]): LoadResult {
    this.logger?.error(
      { file: this.file, policyVersion: this.version, errors: errors.slice(0, 20).map(forLog), errorCount: errors.length },
      `policy ${operation} rejected: the active policies stay in force`,
    );
    return { ok: false, errors };
  }

  private logLoaded(warnings: string[]): void {
    this.logger?.info({ file: this.file, policyVersion: this.version, policies: this.active.policies.length }, 'policies loaded');
    if (warnings.length > 0) this.logger?.warn({ file: this.file, policyVersion: this.version, warnings: warnings.map(forLog) }, 'policy validation warnings');
  }
}

/**
 * The decision cache's key: the policy set id (one per engine and version) and the request and entities exactly as
 * Cedar gets them, serialized (JSON.stringify follows the literals' fixed key order and keeps array order, and
 * escapes every string unambiguously). The only number, StudyDate, must be a safe integer: JSON writes NaN and
 * Infinity as null, which would let different inputs share a key; such a study is not cached.
 */
function decisionKey(setId: string, input: object, study: StudyAttributes | undefined): string | undefined {
  if (study && !Number.isSafeInteger(study.studyDate)) return undefined;
  return `${setId}\n${JSON.stringify(input)}`;
}

function readPolicyFile(file: string): string | { errors: string[] } {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    return { errors: [`${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? 'unknown error'})`] };
  }
}
