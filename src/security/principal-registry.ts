// The principal registry (issue 5, SECURITY.md 7 "registry keyed by SHA-256 fingerprint or (issuer, serial) ->
// id + roles"): which verified client certificates are whom. node:tls has already verified the chain; the
// registry only names the holder. A certificate that matches no entry has no principal: the mTLS listener
// refuses it with 403 (http/plugins/authenticate.ts mtlsResolver), so a CA that signs too much does not
// widen access by itself.
//
// Matching never compiles configuration text into a regular expression: subject patterns are matched with
// a plain wildcard matcher (no ReDoS, no metacharacters to escape).

import type { Config } from '../config/schema.js';
import { foldPersonName } from '../index/query/normalize.js';
import { type CertificateIdentity, type Principal, type PrincipalAttributes, PRINCIPAL_URI_PREFIX, normalizeFingerprint } from './principal.js';

/**
 * The SAN URI of the development client certificate (security/pki.ts createDevPki, DEV_CLIENT_PRINCIPAL; not
 * imported from there so that the server's request path never loads node-forge).
 */
export const DEV_ADMIN_SAN_URI = `${PRINCIPAL_URI_PREFIX}dev-admin`;
/** What the development client certificate maps to when no entry names it (development profile only). */
export const DEV_ADMIN_PRINCIPAL_ID = 'dev-admin';
export const DEV_ADMIN_ROLES: readonly string[] = Object.freeze(['admin']);

type PrincipalEntryConfig = Config['principals'][number];

/** How an entry recognises a certificate, as the admin API shows it (nothing here is a secret). */
export type RegistryMatch =
  | { kind: 'fingerprint256' | 'sanUri' | 'sanDns' | 'sanEmail'; value: string }
  | { kind: 'issuerSubject'; issuer: string; subject: string };

export interface RegistryEntry {
  id: string;
  match: RegistryMatch;
  roles: string[];
  attributes: PrincipalAttributes;
  /** True for the development profile's built-in dev-admin mapping (not from the configuration). */
  builtIn?: true;
}

interface CompiledEntry {
  entry: RegistryEntry;
  matches: (identity: CertificateIdentity) => boolean;
}

export class PrincipalRegistry {
  readonly #entries: CompiledEntry[];
  readonly #devDefault: RegistryEntry | undefined;

  constructor(config: Pick<Config, 'principals' | 'profile'>) {
    this.#entries = config.principals.map(compileEntry);
    // Production never maps a certificate that no entry names (fail closed, DESIGN.md).
    this.#devDefault =
      config.profile === 'development'
        ? freezeEntry({
            id: DEV_ADMIN_PRINCIPAL_ID,
            match: { kind: 'sanUri', value: DEV_ADMIN_SAN_URI },
            roles: [...DEV_ADMIN_ROLES],
            attributes: { institution: '', referringPhysician: '', npi: '', sites: [] },
            builtIn: true,
          })
        : undefined;
  }

  /** The principal of a verified certificate: the first entry that matches, in configuration order; else undefined. */
  resolve(identity: CertificateIdentity): Principal | undefined {
    for (const { entry, matches } of this.#entries) {
      if (matches(identity)) return principalOf(entry, identity);
    }
    if (this.#devDefault && identity.sanUris.includes(DEV_ADMIN_SAN_URI)) return principalOf(this.#devDefault, identity);
    return undefined;
  }

  /** The entries, in matching order (for the admin API); the development default last when it applies. */
  list(): RegistryEntry[] {
    const entries = this.#entries.map((c) => c.entry);
    return structuredClone(this.#devDefault ? [...entries, this.#devDefault] : entries);
  }
}

function principalOf(entry: RegistryEntry, identity: CertificateIdentity): Principal {
  // Fresh arrays per request: a later layer that mutates its principal cannot change the registry.
  return {
    kind: 'certificate',
    id: entry.id,
    roles: [...entry.roles],
    attributes: { ...entry.attributes, sites: [...entry.attributes.sites] },
    certificate: identity,
  };
}

function compileEntry(config: PrincipalEntryConfig): CompiledEntry {
  const attributes: PrincipalAttributes = {
    institution: config.attributes.institution,
    // Policies compare it with StudyAttributes.referringPhysician: the alphabetic group, folded the same way.
    referringPhysician: foldPersonName(config.attributes.referringPhysician.split('=')[0] ?? ''),
    npi: config.attributes.npi,
    sites: [...config.attributes.sites],
  };
  const base = { id: config.id, roles: [...config.roles], attributes };
  const m = config.match;
  if ('fingerprint256' in m) {
    const fingerprint = normalizeFingerprint(m.fingerprint256);
    return { entry: freezeEntry({ ...base, match: { kind: 'fingerprint256', value: fingerprint } }), matches: (c) => c.fingerprint256 === fingerprint };
  }
  if ('sanUri' in m) {
    // RFC 3986 6.2.2.1: scheme and host are case-insensitive, the rest is not; we issue and compare one exact spelling.
    const uri = m.sanUri;
    return { entry: freezeEntry({ ...base, match: { kind: 'sanUri', value: uri } }), matches: (c) => c.sanUris.includes(uri) };
  }
  if ('sanDns' in m) {
    // RFC 5280 4.2.1.6 / 7.2: DNS names compare case-insensitively (IA5String, ASCII).
    const dns = asciiLower(m.sanDns);
    return { entry: freezeEntry({ ...base, match: { kind: 'sanDns', value: m.sanDns } }), matches: (c) => c.sanDns.some((d) => asciiLower(d) === dns) };
  }
  if ('sanEmail' in m) {
    // RFC 5280 7.5 keeps the local part case-sensitive; mail systems do not, and neither do we (one person, one entry).
    const email = asciiLower(m.sanEmail);
    return { entry: freezeEntry({ ...base, match: { kind: 'sanEmail', value: m.sanEmail } }), matches: (c) => c.sanEmails.some((e) => asciiLower(e) === email) };
  }
  const { issuer, subject } = m;
  const pattern = subjectPattern(subject);
  return {
    entry: freezeEntry({ ...base, match: { kind: 'issuerSubject', issuer, subject } }),
    matches: (c) => c.issuer === issuer && pattern(c.subject),
  };
}

function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (ch) => ch.toLowerCase());
}

/**
 * A subject pattern as Node prints a DN (X509Certificate.subject: one `TYPE=value` per line, in certificate
 * order). Lines compare one to one (same number of RDNs); the attribute type exactly; in the value, `*`
 * matches any run of characters (also none) and never crosses into another RDN.
 */
export function subjectPattern(pattern: string): (subject: string) => boolean {
  const lines = pattern.split('\n').map((line) => {
    const eq = line.indexOf('=');
    // A line without `=` can only match itself.
    return eq < 0 ? { type: line, value: undefined } : { type: line.slice(0, eq), value: line.slice(eq + 1).split('*') };
  });
  return (subject) => {
    const actual = subject.split('\n');
    if (actual.length !== lines.length) return false;
    return lines.every((p, i) => {
      const line = actual[i]!;
      if (p.value === undefined) return line === p.type;
      const eq = line.indexOf('=');
      if (eq < 0 || line.slice(0, eq) !== p.type) return false;
      return wildcardMatch(p.value, line.slice(eq + 1));
    });
  };
}

/** `parts` is the pattern split at `*`: the first part must start the text, the last end it, the rest follow in order. */
function wildcardMatch(parts: string[], text: string): boolean {
  if (parts.length === 1) return parts[0] === text;
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (text.length < first.length + last.length || !text.startsWith(first) || !text.endsWith(last)) return false;
  // Leftmost placement of each middle part is optimal for `*`-only patterns.
  let at = first.length;
  const end = text.length - last.length;
  for (const part of parts.slice(1, -1)) {
    const found = text.indexOf(part, at);
    if (found < 0 || found + part.length > end) return false;
    at = found + part.length;
  }
  return true;
}

function freezeEntry(entry: RegistryEntry): RegistryEntry {
  Object.freeze(entry.roles);
  Object.freeze(entry.attributes.sites);
  Object.freeze(entry.attributes);
  Object.freeze(entry.match);
  return Object.freeze(entry);
}
