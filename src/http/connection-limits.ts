// Connection caps of one listener (SECURITY.md 8 case 18): at most `maxPerIp` open connections from one peer
// address, counted at the TCP `connection` event, before the TLS handshake costs any CPU; and the listener's
// total (net.Server maxConnections, which Node enforces itself and reports with a 'drop' event). A refused
// connection is destroyed at once, logged (the address only: no PHI) and counted in Prometheus.
//
// The slow side of a slowloris (headers or a body trickled byte by byte) is ended by the server's
// headersTimeout / requestTimeout (app.ts); this caps how many such sockets one peer can hold at the same time.

import type { Server, Socket } from 'node:net';
import type { BlockList } from 'node:net';
import { isTrusted } from '../security/trusted-proxies.js';

export type RefusalReason = 'per_ip' | 'total';

export interface ConnectionLimitOptions {
  /** Open connections allowed from one peer address at once. */
  maxPerIp: number;
  /**
   * Peers not held to maxPerIp (server.trustedProxies: a reverse proxy carries many clients on its own address);
   * the listener's total cap still holds for them.
   */
  exempt?: BlockList;
  /** Each refused connection: log it and count it. */
  onRefused: (reason: RefusalReason, address: string | undefined) => void;
  /** Each admitted connection's opening (+1) and closing (-1), for the open-connections gauge. */
  onOpenChange?: (delta: 1 | -1) => void;
}

/** An IPv4 peer on a dual-stack listener is reported as ::ffff:a.b.c.d: the same peer as a.b.c.d. */
export function peerKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address.toLowerCase();
}

export interface ConnectionLimiter {
  /** Open connections from `address` now (as counted for the cap). */
  openFrom(address: string): number;
  /** Open connections admitted now, from all peers. */
  readonly open: number;
}

/**
 * Applies the per-peer cap to `server` (a tls.Server, or a plain net/http one), and reports the total cap's
 * refusals. Call before listen().
 *
 * The cap has to act before the TLS layer sees the socket: destroying it in a listener of our own would let
 * tls.Server wrap the dead socket anyway and report a 'tlsClientError' (ECONNRESET), which app.ts logs and
 * audits as a refused handshake — an audit record per refused connection, which a connection flood must not
 * be able to buy. So the listeners present now (tls.Server's own) are moved behind the check; listeners added
 * later run after it and see a refused socket already destroyed.
 */
export function limitConnections(server: Server, options: ConnectionLimitOptions): ConnectionLimiter {
  const perPeer = new Map<string, number>();
  let open = 0;
  const inner = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');

  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress;
    // Already gone (reset during accept): nothing to count or serve.
    if (address === undefined) {
      socket.destroy();
      return;
    }
    const key = peerKey(address);
    const exempt = options.exempt !== undefined && isTrusted(options.exempt, address);
    const current = perPeer.get(key) ?? 0;
    if (!exempt && current >= options.maxPerIp) {
      socket.destroy();
      options.onRefused('per_ip', key);
      return;
    }
    perPeer.set(key, current + 1);
    open += 1;
    options.onOpenChange?.(1);
    socket.once('close', () => {
      const left = (perPeer.get(key) ?? 1) - 1;
      if (left <= 0) perPeer.delete(key);
      else perPeer.set(key, left);
      open -= 1;
      options.onOpenChange?.(-1);
    });
    for (const listener of inner) listener.call(server, socket);
  });
  // Node refuses connections over server.maxConnections itself, before any 'connection' event (Node >= 18.6).
  server.on('drop', (data?: { remoteAddress?: string }) => {
    options.onRefused('total', data?.remoteAddress === undefined ? undefined : peerKey(data.remoteAddress));
  });
  return {
    openFrom: (address) => perPeer.get(peerKey(address)) ?? 0,
    get open() {
      return open;
    },
  };
}

/**
 * A log line per refusal would let a connection flood fill the log as fast as it connects: the first refusal
 * of a reason is written at once, later ones at most once per `intervalMs` with how many were folded in.
 */
export function throttledRefusalLog(
  write: (fields: { reason: RefusalReason; remoteAddress: string | undefined; refusedSinceLastLine: number }) => void,
  intervalMs = 10_000,
  now: () => number = Date.now,
): (reason: RefusalReason, address: string | undefined) => void {
  const last = new Map<RefusalReason, { at: number; folded: number }>();
  return (reason, address) => {
    const seen = last.get(reason);
    const t = now();
    if (seen !== undefined && t - seen.at < intervalMs) {
      seen.folded += 1;
      return;
    }
    write({ reason, remoteAddress: address, refusedSinceLastLine: (seen?.folded ?? 0) + 1 });
    last.set(reason, { at: t, folded: 0 });
  };
}
