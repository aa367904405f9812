// Turns the client certificate that node:tls has already verified (chain, validity, EKU) into the
// principal every later layer sees (authorization, audit: HIPAA 164.312(a)(2)(i) "unique user
// identification"). Runtime code uses crypto.X509Certificate only; node-forge is never given a
// peer certificate (SECURITY.md 9).
//
// A principal is not PHI and may be logged; nothing here reads anything but the certificate.

import type { X509Certificate } from 'node:crypto';
import { AppError } from '../errors.js';

/** SAN URI that names the principal (RFC 5280 4.2.1.6 uniformResourceIdentifier). */
export const PRINCIPAL_URI_PREFIX = 'urn:dicomvault:principal:';
/** SAN URI that names a role (optional, any number). See pki.ts issueClientCertificate. */
export const ROLE_URI_PREFIX = 'urn:dicomvault:role:';

/**
 * Who is calling, as every layer after authentication sees it (authorization, audit). Four kinds:
 * - certificate: a verified client certificate the principal registry (security/principal-registry.ts) maps;
 * - token: an OIDC bearer token on the web listener (security/oidc.ts);
 * - share: a share-link session (policy/share-links.ts): may read exactly its grant, nothing else;
 * - system: the operating-system user running a command-line tool on the archive's host (`dicomvault import`),
 *   never a network caller; the policy engine is not asked about it (services/import-files.ts).
 * An id is unique and stable across requests; roles and attributes come from the registry or the token's
 * claims, never from the client's say-so.
 */
export interface Principal {
  kind: 'certificate' | 'token' | 'share' | 'system';
  /** The registry id for certificates, `oidc:<sub>` (or the mapped claim) for tokens, `share:<shareId>` for shares. */
  id: string;
  roles: string[];
  attributes: PrincipalAttributes;
  /** The certificate a `certificate` principal authenticated with. */
  certificate?: CertificateIdentity;
  /** The token a `token` principal authenticated with (no token text: it is a credential). */
  token?: TokenIdentity;
  /** What a `share` principal may read. */
  share?: ShareGrant;
}

/** The attributes policies may use (policy/cedar-schema.ts `Principal`); absent ones are '' or []. */
export interface PrincipalAttributes {
  /** Compared with the study's InstitutionName. */
  institution: string;
  /** A referring physician's name, folded like StudyAttributes.referringPhysician ('SMITH^JOHN'). */
  referringPhysician: string;
  /** National Provider Identifier or a local practitioner id. */
  npi: string;
  /** Sites (e.g. a gateway's sending sites) the principal acts for. */
  sites: string[];
}

export const NO_ATTRIBUTES: PrincipalAttributes = Object.freeze({ institution: '', referringPhysician: '', npi: '', sites: [] as string[] }) as PrincipalAttributes;

export interface TokenIdentity {
  issuer: string;
  subject: string;
  expiresAt: Date;
  /** JWT ID when the token had one (audit: IHE BALP records it). */
  jti?: string;
  clientId?: string;
}

/** A share link's grant (SECURITY.md 3 "Our share links"). */
export interface ShareGrant {
  shareId: string;
  studyInstanceUID: string;
  /** view: search, metadata, frames, bulk data (viewers fetch it), rendered; download: also whole instances (application/dicom). */
  scope: 'view' | 'download';
  /** When the session (not the link) ends. */
  expiresAt: Date;
}

/** The verified client certificate, as read from the TLS socket (before the registry maps it). */
export interface CertificateIdentity {
  /** `urn:dicomvault:principal:<name>` from the SAN, else `cert:sha256:<fingerprint256>`. */
  id: string;
  /** Node's rendering of the subject DN (one `TYPE=value` per line). Informational: never match on it. */
  subject: string;
  sanUris: string[];
  sanDns: string[];
  sanEmails: string[];
  issuer: string;
  /** Lowercase hex, as in the certificate (RFC 5280 4.1.2.2); (issuer, serialNumber) is unique per CA. */
  serialNumber: string;
  /** SHA-256 of the DER certificate, lowercase hex without colons. */
  fingerprint256: string;
  notAfter: Date;
}

export function certificateIdentity(cert: X509Certificate): CertificateIdentity {
  const names = parseSubjectAltName(cert.subjectAltName);
  const sanUris = names.filter((n) => n.type === 'URI').map((n) => n.value);
  const sanDns = names.filter((n) => n.type === 'DNS').map((n) => n.value);
  const sanEmails = names.filter((n) => n.type === 'email').map((n) => n.value);
  const fingerprint256 = normalizeFingerprint(cert.fingerprint256);

  const notAfter = new Date(cert.validTo);
  if (Number.isNaN(notAfter.getTime())) {
    // Cannot happen for a certificate OpenSSL accepted; refuse rather than carry an Invalid Date.
    throw new AppError('FORBIDDEN', 'client certificate has an unreadable notAfter date');
  }

  return {
    id: principalId(sanUris, fingerprint256),
    subject: cert.subject,
    sanUris,
    sanDns,
    sanEmails,
    issuer: cert.issuer,
    serialNumber: cert.serialNumber.toLowerCase(),
    fingerprint256,
    notAfter,
  };
}

/** Role names carried as `urn:dicomvault:role:<role>` SAN URIs, in certificate order. */
export function rolesFromCertificate(principal: CertificateIdentity): string[] {
  return principal.sanUris
    .filter((uri) => uri.startsWith(ROLE_URI_PREFIX))
    .map((uri) => uri.slice(ROLE_URI_PREFIX.length))
    .filter((role) => role.length > 0);
}

/** `AB:CD:...` (Node) -> `abcd...`. */
export function normalizeFingerprint(fingerprint: string): string {
  return fingerprint.replaceAll(':', '').toLowerCase();
}

function principalId(sanUris: string[], fingerprint256: string): string {
  // Exact, case-sensitive prefix: we issue exactly this form, and a second spelling of the same
  // identity ("URN:DicomVault:...") would be a second key for the same registry entry.
  const named = [...new Set(sanUris.filter((uri) => uri.startsWith(PRINCIPAL_URI_PREFIX)))];
  if (named.length > 1) {
    // Two identities in one certificate: whichever we picked, the other holder could claim it. Fail closed.
    throw new AppError('FORBIDDEN', 'client certificate names more than one principal');
  }
  const [uri] = named;
  if (uri !== undefined) {
    if (uri.length === PRINCIPAL_URI_PREFIX.length) {
      throw new AppError('FORBIDDEN', 'client certificate names an empty principal');
    }
    return uri;
  }
  return `cert:sha256:${fingerprint256}`;
}

export interface GeneralName {
  /** Node's label: `DNS`, `URI`, `email`, `IP Address`, `DirName`, `othername`, `Registered ID`, ... */
  type: string;
  value: string;
}

/**
 * Parses Node's `subjectAltName` string: entries joined by `", "`, each `TYPE:value`.
 *
 * Since the CVE-2021-44532 fix (Node 12.22.9/14.18.3/16.13.2/17.3.1), a value containing `,` `"`
 * `\` `'`, a control character or (outside UTF-8 strings) non-ASCII is printed as a JSON string
 * literal: Node 20 writes `URI:"urn:a\u002cb"`; the entry may also be quoted as a whole
 * (`"URI:..."`), and both forms are accepted. Commas inside quotes are escaped, so a raw `, ` only
 * ever separates entries — but we still track quotes (and backslash escapes inside them) rather
 * than split blindly, so a value can never be read as two entries.
 */
export function parseSubjectAltName(san: string | undefined): GeneralName[] {
  if (san === undefined || san === '') return [];
  const names: GeneralName[] = [];
  for (const entry of splitEntries(san)) {
    // Either the whole entry is quoted or only the value is (`URI:"..."`, Node 20); handle both.
    const text = entry.startsWith('"') ? decodeJsonString(entry) : entry;
    const colon = text.indexOf(':');
    if (colon <= 0) throw unparseable();
    const raw = text.slice(colon + 1);
    // An unquoted value never contains `"`, so a leading quote always opens a JSON string.
    const value = !entry.startsWith('"') && raw.startsWith('"') ? decodeJsonString(raw) : raw;
    names.push({ type: text.slice(0, colon), value });
  }
  return names;
}

function splitEntries(san: string): string[] {
  const entries: string[] = [];
  let start = 0;
  let inQuotes = false;
  for (let i = 0; i < san.length; i++) {
    const c = san[i];
    if (inQuotes) {
      if (c === '\\') i++; // skip the escaped character
      else if (c === '"') inQuotes = false;
    } else if (c === '"') {
      inQuotes = true;
    } else if (c === ',' && san[i + 1] === ' ') {
      entries.push(san.slice(start, i));
      start = i + 2;
      i++;
    }
  }
  if (inQuotes) throw unparseable();
  entries.push(san.slice(start));
  return entries;
}

function decodeJsonString(quoted: string): string {
  // JSON.parse would also accept surrounding whitespace, which Node never prints.
  if (quoted.length < 2 || !quoted.startsWith('"') || !quoted.endsWith('"')) throw unparseable();
  let value: unknown;
  try {
    value = JSON.parse(quoted);
  } catch {
    value = undefined;
  }
  if (typeof value !== 'string') throw unparseable();
  return value;
}

function unparseable(): AppError {
  return new AppError('FORBIDDEN', 'client certificate subjectAltName is not parseable');
}
