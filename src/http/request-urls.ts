// The base URL for RetrieveURL and BulkDataURI values, in this order:
// 1. the configured public URL (server.publicUrl), always;
// 2. the origin a trusted reverse proxy or gateway reports (server.trustedProxies; forwarded.ts), plus basePath;
// 3. this listener's own address.
// Forwarded / X-Forwarded-* from any other peer are ignored (SECURITY.md 7: a client could point URLs anywhere).

import type { BlockList } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { resourceUrls, type ResourceUrls } from '../services/resource-urls.js';
import { forwardedOrigin } from './forwarded.js';

export interface UrlSettings {
  publicUrl?: string;
  basePath: string;
  /** Peers whose forwarding headers are believed; absent or empty: none. */
  trustedProxies?: BlockList;
}

export function urlsFor(request: FastifyRequest, settings: UrlSettings): ResourceUrls {
  if (settings.publicUrl) return resourceUrls(settings.publicUrl);
  const socket = request.raw.socket;
  if (settings.trustedProxies) {
    const origin = forwardedOrigin(request.headers, socket.remoteAddress, settings.trustedProxies);
    if (origin) return resourceUrls(`${origin.proto}://${origin.host}${settings.basePath}`);
  }
  const host = socket.localAddress ?? '127.0.0.1';
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const port = socket.localPort;
  const origin = port ? `https://${hostPart}:${port}` : `https://${hostPart}`;
  return resourceUrls(origin + settings.basePath);
}
