// Every request carries a principal (SECURITY.md 7: "the client certificate is an identity, not just a gate").
// On the mTLS listener the TLS layer already refused unverified peers; here the verified certificate becomes
// request.principal. A request without one is refused (fail closed) — it can only happen if the listener
// was misconfigured.

import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import { type Principal, principalFromPeerCertificate } from '../../security/principal.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
}

export type PrincipalResolver = (request: FastifyRequest) => Principal | undefined;

/** The verified client certificate of the TLS connection, as a principal. */
export const principalFromTls: PrincipalResolver = (request) => {
  const socket = request.raw.socket as Partial<TLSSocket>;
  if (!socket.authorized || typeof socket.getPeerX509Certificate !== 'function') return undefined;
  const cert = socket.getPeerX509Certificate();
  return cert ? principalFromPeerCertificate(cert) : undefined;
};

export function registerAuthentication(app: FastifyInstance, resolve: PrincipalResolver): void {
  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (request) => {
    const principal = resolve(request);
    if (!principal) throw new AppError('UNAUTHENTICATED', 'a verified client certificate is required');
    request.principal = principal;
    // The fingerprint identifies the caller in the application log; it is not PHI.
    request.log = request.log.child({ principal: principal.id });
  });
}
