// The base URL for RetrieveURL values: the configured public URL, or this listener's own address.
// Forwarded / X-Forwarded-* are not trusted (SECURITY.md 7: a client could point URLs anywhere).

import type { FastifyRequest } from 'fastify';
import { resourceUrls, type ResourceUrls } from '../services/resource-urls.js';

export interface UrlSettings {
  publicUrl?: string;
  basePath: string;
}

export function urlsFor(request: FastifyRequest, settings: UrlSettings): ResourceUrls {
  if (settings.publicUrl) return resourceUrls(settings.publicUrl);
  const socket = request.raw.socket;
  const host = socket.localAddress ?? '127.0.0.1';
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const port = socket.localPort;
  const origin = port ? `https://${hostPart}:${port}` : `https://${hostPart}`;
  return resourceUrls(origin + settings.basePath);
}
