// Reads CRLs (RFC 5280 section 5) with @peculiar/x509: Node's crypto has no CRL parser, and hand-written DER code
// is what this project keeps out of security paths. Runs in crl-worker.ts, off the event loop: @peculiar's
// ASN.1 layer (asn1js) builds one object per node, about a second of CPU per 50,000 revoked entries.

import 'reflect-metadata'; // @peculiar/x509 resolves its parsers through tsyringe, which needs the Reflect metadata API
import { X509Crl, X509Certificate as PeculiarCertificate } from '@peculiar/x509';

export interface ParsedCrl {
  /** Index in the CA list of the CA that signed it; absent when no CA of that name is in the list. */
  caIndex?: number;
  /** Issuer name as an RFC 4514 string (@peculiar/x509's spelling). */
  issuer: string;
  thisUpdate: number;
  nextUpdate?: number;
  /** Serial numbers of the revoked certificates, lowercase hex as @peculiar writes them. */
  serials: string[];
}

export interface CrlParseRequest {
  /** The CRL file's text: one PEM block per CRL. */
  pem: string;
  /** DER of each CA certificate of tls.ca. */
  cas: Uint8Array[];
  /** The file's path, for the messages. */
  file: string;
  now: number;
}

/** The PEM blocks of `label` in a file (a CA bundle holds several certificates, a CRL file one CRL per CA). */
export function pemBlocks(pem: string, label: string): string[] {
  const re = new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----`, 'g');
  return pem.match(re) ?? [];
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Parses each CRL of the file and checks it against the CA list: a CRL whose issuer is a CA of the list must
 * verify with that CA's key (RFC 5280 6.3.3 (f)), and every CRL must already be valid (thisUpdate not in the
 * future: OpenSSL would answer CRL_NOT_YET_VALID to everyone). Throws an Error naming the file and the CRL.
 */
export async function parseCrls(request: CrlParseRequest): Promise<ParsedCrl[]> {
  const blocks = pemBlocks(request.pem, 'X509 CRL');
  if (blocks.length === 0) throw new Error(`TLS CRL file ${request.file} does not hold a PEM CRL (-----BEGIN X509 CRL-----)`);
  const cas = request.cas.map((der) => new PeculiarCertificate(der));
  const out: ParsedCrl[] = [];
  for (const [i, block] of blocks.entries()) {
    const which = `CRL ${i + 1} of ${request.file}`;
    let crl: X509Crl;
    try {
      // asn1js caps a parse at 10,000 nodes by default (a guard against hostile input): a CRL of a few thousand
      // entries exceeds it. This file is the operator's, and no DER node is shorter than two bytes, so its size
      // bounds the count.
      const bytes = Math.ceil((block.length * 3) / 4);
      crl = new X509Crl(block, { berOptions: { maxNodes: bytes, maxContentLength: bytes } });
    } catch (err) {
      throw new Error(`TLS ${which} does not parse (${message(err)})`);
    }
    let caIndex: number | undefined;
    let named = false;
    for (const [index, ca] of cas.entries()) {
      if (ca.subject !== crl.issuer) continue;
      named = true;
      if (await crl.verify({ publicKey: ca.publicKey }).catch(() => false)) {
        caIndex = index;
        break;
      }
    }
    if (named && caIndex === undefined) throw new Error(`TLS ${which} (issuer ${crl.issuer}) is not signed by the CA of that name in the tls.ca file`);
    if (crl.thisUpdate.getTime() > request.now) throw new Error(`TLS ${which} is not valid yet (thisUpdate ${crl.thisUpdate.toISOString()})`);
    out.push({
      ...(caIndex === undefined ? {} : { caIndex }),
      issuer: crl.issuer,
      thisUpdate: crl.thisUpdate.getTime(),
      ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate.getTime() } : {}),
      serials: crl.entries.map((e) => e.serialNumber),
    });
  }
  return out;
}
