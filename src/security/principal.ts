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

export interface Principal {
  kind: 'certificate';
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

export function principalFromPeerCertificate(cert: X509Certificate): Principal {
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
    kind: 'certificate',
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
export function rolesFromPrincipal(principal: Principal): string[] {
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
