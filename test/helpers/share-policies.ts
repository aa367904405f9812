// The share-link tests' policies, as a real Cedar file through the engine the server uses: alice may share ST1,
// bob ST1 and ST2, admins anything; nobody else anything.
import fs from 'node:fs';
import path from 'node:path';
import { CedarPolicyEngine } from '../../src/policy/policy-engine.js';
import { NO_ATTRIBUTES, type Principal } from '../../src/security/principal.js';
import { ST1, ST2 } from '../contracts/index-store.fixtures.js';

const POLICIES = `
@id("admin-all")
permit (principal in Role::"admin", action, resource);

@id("alice-shares-st1")
permit (principal == User::"alice", action == Action::"share", resource)
when { resource.studyInstanceUID == "${ST1}" };

@id("bob-shares-st1-st2")
permit (principal == User::"bob", action == Action::"share", resource)
when { ["${ST1}", "${ST2}"].contains(resource.studyInstanceUID) };
`;

export function sharePolicies(dir: string): CedarPolicyEngine {
  const file = path.join(dir, 'share-tests.cedar');
  fs.writeFileSync(file, POLICIES);
  return CedarPolicyEngine.fromFile(file);
}

export const person = (id: string, roles: string[] = []): Principal => ({ kind: 'certificate', id, roles, attributes: NO_ATTRIBUTES });
