// CORS (Fetch standard, "CORS protocol" 3.2) for browser viewers such as OHIF on another origin
// (PROTOCOL.md §2). Only origins listed in cors.origins, matched exactly, ever see CORS headers; an empty
// list means no CORS headers at all. Never `*`: responses carry PHI.
//
// - Every response to a listed origin (errors included, so the viewer can read them) carries
//   Access-Control-Allow-Origin, Vary: Origin and Access-Control-Expose-Headers (Fetch 3.2.3).
// - A CORS preflight (Fetch 3.2.2: OPTIONS with Origin and Access-Control-Request-Method) is answered here,
//   before authentication and routing, on any path: browsers send preflights without credentials
//   (Fetch 4.8 "CORS-preflight fetch"). A preflight from another origin is 403 without CORS headers.
// - A plain OPTIONS (no Access-Control-Request-Method) is the Capabilities transaction (PS3.18 8.9) and is
//   left to the routes.
// Must be registered before registerAuthentication (hooks run in registration order).

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';

export const CORS_ALLOW_METHODS = 'GET, POST, DELETE, OPTIONS';
/** Accept is not CORS-safelisted with DICOM media types (PROTOCOL.md §3 item 1); Range for bulk data. */
export const CORS_ALLOW_HEADERS = 'Authorization, Accept, Content-Type, If-None-Match, Range, Break-Glass-Reason';
/** Response headers scripts may read (Fetch 3.2.3: only safelisted ones otherwise): Warning carries QIDO paging. */
export const CORS_EXPOSE_HEADERS = 'Warning, Content-Type, Content-Length, Content-Location, ETag, Content-Range, WWW-Authenticate';
export const CORS_MAX_AGE_SECONDS = 600;

export interface CorsOptions {
  origins: readonly string[];
}

/** Adds `value` to the reply's Vary header unless it is already there. */
function appendVary(reply: FastifyReply, value: string): void {
  const current = reply.getHeader('vary');
  const list = current === undefined ? [] : String(current).split(',').map((s) => s.trim()).filter(Boolean);
  if (list.includes('*') || list.some((v) => v.toLowerCase() === value.toLowerCase())) return;
  reply.header('vary', [...list, value].join(', '));
}

function allowedOrigin(request: FastifyRequest, origins: ReadonlySet<string>): string | undefined {
  const origin = request.headers.origin;
  return typeof origin === 'string' && origins.has(origin) ? origin : undefined;
}

export function registerCors(app: FastifyInstance, options: CorsOptions): void {
  if (options.origins.length === 0) return;
  const origins = new Set(options.origins);

  app.addHook('onRequest', async (request, reply) => {
    const isPreflight =
      request.method === 'OPTIONS' && request.headers.origin !== undefined && request.headers['access-control-request-method'] !== undefined;
    if (!isPreflight) return;
    if (!allowedOrigin(request, origins)) throw new AppError('FORBIDDEN', 'origin not allowed');
    // Fetch 3.2.3: the preflight answer lists what the actual request may use; the browser enforces it.
    return reply
      .code(204)
      .header('access-control-allow-methods', CORS_ALLOW_METHODS)
      .header('access-control-allow-headers', CORS_ALLOW_HEADERS)
      .header('access-control-max-age', String(CORS_MAX_AGE_SECONDS))
      .send();
  });

  app.addHook('onSend', async (request, reply, payload) => {
    // The answer depends on Origin whenever CORS is on, also for origins that get no headers (caches).
    appendVary(reply, 'Origin');
    const origin = allowedOrigin(request, origins);
    if (origin) {
      reply.header('access-control-allow-origin', origin);
      reply.header('access-control-expose-headers', CORS_EXPOSE_HEADERS);
    }
    return payload;
  });
}
