// A stored object that fails its integrity check after a response has started (a later part of a multipart
// retrieve, a later segment of a large object) can only cut the connection: the status is already sent. It is
// still a security event (issue 4: "a security-level log entry"), logged here once, like the error handler
// logs the failures that happen before the first byte (error-handler.ts). No DICOM value is logged.

import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { KeyIntegrityError } from '../../storage/keys/key-provider.js';

export function registerStreamIntegrityLog(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply, payload) => {
    if (payload instanceof Readable) {
      payload.once('error', (err: unknown) => {
        // Before the headers went out the error handler answers (and logs) instead.
        if (err instanceof KeyIntegrityError && reply.raw.headersSent) {
          request.log.error({ security: true, err }, 'stored object failed its integrity check after the response started: response cut');
        }
      });
    }
    return payload;
  });
}
