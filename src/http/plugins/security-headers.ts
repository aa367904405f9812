// Headers every response carries. QIDO answers and error bodies can hold PHI, so nothing is cached by browsers
// or proxies (SECURITY.md "Origin-post items", case 36).

import type { FastifyInstance } from 'fastify';

export function registerSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('cache-control', 'no-store');
    reply.header('pragma', 'no-cache');
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('strict-transport-security', 'max-age=31536000');
    // Fetch 3.8 (CORP): a viewer page under COEP require-corp (OHIF for MPR, PROTOCOL.md §2) may only load
    // resources that opt in; cross-origin lets <img> thumbnails and no-cors fetches through. Reading the
    // bytes from script still needs CORS (plugins/cors.ts).
    reply.header('cross-origin-resource-policy', 'cross-origin');
    return payload;
  });
}
