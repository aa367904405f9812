// Which origin (scheme and host) the client used, when a reverse proxy or gateway stands between it and this
// listener: RFC 7239 `Forwarded`, or the de-facto `X-Forwarded-Proto` / `X-Forwarded-Host`. RetrieveURL and
// BulkDataURI values are built from it, so a viewer behind the gateway gets URLs it can follow.
//
// Trust (SECURITY.md 7): these headers are believed only when the TCP peer is a configured trusted proxy, and
// then only the element that proxy (or a chain of trusted proxies) wrote: the rightmost, stepping left while
// the `for=` address it names is trusted too. Anything a client put in front of it is ignored, and a value
// that is not a plain scheme or host[:port] is ignored as a whole, so a header can never point URLs at a path,
// userinfo or another scheme.

import type { BlockList } from 'node:net';
import { isTrusted } from '../security/trusted-proxies.js';

export interface ForwardedOrigin {
  proto: 'http' | 'https';
  /** host[:port], as the client addressed it. */
  host: string;
}

type Headers = Record<string, string | string[] | undefined>;

/**
 * The origin the client used, or undefined when the peer is not trusted or the headers say nothing usable.
 * `Forwarded` wins over the X-Forwarded-* pair when both are present.
 */
export function forwardedOrigin(headers: Headers, peer: string | undefined, trusted: BlockList): ForwardedOrigin | undefined {
  if (!isTrusted(trusted, peer)) return undefined;
  const forwarded = joined(headers['forwarded']);
  if (forwarded !== undefined) return fromForwarded(forwarded, trusted);
  return fromXForwarded(joined(headers['x-forwarded-proto']), joined(headers['x-forwarded-host']));
}

/** Repeated header lines are one comma-separated list (RFC 9110 5.3). */
function joined(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(',') : value;
}

function fromForwarded(value: string, trusted: BlockList): ForwardedOrigin | undefined {
  const elements = splitOutsideQuotes(value, ',').map(parseElement);
  if (elements.some((e) => e === undefined)) return undefined; // malformed: believe none of it
  let i = elements.length - 1;
  // Step left past elements written by further trusted proxies: element i was written by the proxy that
  // received the request from `for` of element i; if that `for` is trusted, its own element is i - 1.
  while (i > 0 && isTrusted(trusted, nodeAddress(elements[i]!['for']))) i--;
  const element = elements[i]!;
  return validOrigin(element['proto'], element['host']);
}

function fromXForwarded(proto: string | undefined, host: string | undefined): ForwardedOrigin | undefined {
  if (proto === undefined && host === undefined) return undefined;
  // The rightmost value is the one the trusted peer added.
  const last = (v: string | undefined) => v?.split(',').at(-1)?.trim();
  return validOrigin(last(proto), last(host));
}

function validOrigin(proto: string | undefined, host: string | undefined): ForwardedOrigin | undefined {
  const p = proto?.toLowerCase();
  if ((p !== 'http' && p !== 'https') || host === undefined || !HOST.test(host)) return undefined;
  return { proto: p, host: host.toLowerCase() };
}

/** RFC 3986 host (reg-name of unreserved characters, IPv4, or [IPv6]) with an optional port. */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253})|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/** One forwarded-element: `name=value` pairs separated by `;`, values tokens or quoted strings (RFC 7239 4). */
function parseElement(text: string): Record<string, string> | undefined {
  const element: Record<string, string> = {};
  for (const pair of splitOutsideQuotes(text, ';')) {
    const trimmed = pair.trim();
    if (trimmed === '') continue;
    const eq = trimmed.indexOf('=');
    if (eq <= 0) return undefined;
    const name = trimmed.slice(0, eq).trim().toLowerCase();
    let value = trimmed.slice(eq + 1).trim();
    if (value.startsWith('"')) {
      if (value.length < 2 || !value.endsWith('"')) return undefined;
      value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    }
    element[name] = value;
  }
  return element;
}

/** The address in a `for=` node (RFC 7239 6): `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]:80`, or obfuscated. */
function nodeAddress(node: string | undefined): string | undefined {
  if (node === undefined) return undefined;
  const bracketed = /^\[([^\]]+)\]/.exec(node);
  if (bracketed) return bracketed[1];
  return node.split(':')[0];
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (c === separator && !quoted) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}
