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
    return payload;
  });
}
