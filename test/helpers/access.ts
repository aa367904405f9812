// Real policy decisions for tests that call services directly: the shipped default policies (policies/default.cedar,
// admin may do everything, nothing else) through the Cedar engine, and principals to decide for.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_POLICY_FILE } from '../../src/compose.js';
import { Access } from '../../src/policy/access.js';
import { CedarPolicyEngine } from '../../src/policy/policy-engine.js';
import { NO_ATTRIBUTES, type Principal, type PrincipalAttributes } from '../../src/security/principal.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export { DEFAULT_POLICY_FILE };

let defaultEngine: CedarPolicyEngine | undefined;
/** The default policy set, loaded once per test process. */
export function defaultPolicies(): CedarPolicyEngine {
  defaultEngine ??= CedarPolicyEngine.fromFile(DEFAULT_POLICY_FILE);
  return defaultEngine;
}

export function certificatePrincipal(id: string, roles: string[] = [], attributes: Partial<PrincipalAttributes> = {}): Principal {
  return { kind: 'certificate', id, roles, attributes: { ...NO_ATTRIBUTES, ...attributes } };
}

/** An administrator: the default policies allow it everything. */
export const ADMIN_PRINCIPAL = certificatePrincipal('test-admin', ['admin']);

export const adminAccess = (): Access => new Access(defaultPolicies(), ADMIN_PRINCIPAL);
/** A registered principal without roles: the default policies allow it nothing. */
export const nobodyAccess = (): Access => new Access(defaultPolicies(), certificatePrincipal('test-nobody'));
