// The one place errors become responses (DESIGN.md "One error table"). 4xx carry their message; 5xx bodies
// are generic and the cause goes to the log. Fastify's own errors (bad route params, unsupported media type,
// body limits) are folded into the same table.

import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ERROR_STATUS, type ErrorCode, isAppError } from '../../errors.js';
import { KeyIntegrityError, KeyUnavailableError } from '../../storage/keys/key-provider.js';
import { StudyKeyErasedError } from '../../storage/keys/study-keyring.js';

/** Fastify error codes we meet, as our codes. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_VALIDATION: 'BAD_REQUEST',
};

export interface ErrorBody {
  error: ErrorCode;
  message: string;
}

/**
 * Key and integrity failures of the encrypted storage (issue 4): a key service that cannot answer is a 503
 * (try again), an erased study a 410, and an object or wrapped key that fails authentication a 500 whose body
 * says nothing of the cause (it is logged as a security event instead). Never corrupted plaintext.
 */
function storageError(error: unknown): AppError | undefined {
  if (error instanceof KeyUnavailableError) return new AppError('SERVICE_UNAVAILABLE', 'the key service is unavailable; try again later', { cause: error });
  if (error instanceof StudyKeyErasedError) return new AppError('GONE', 'the study was erased', { cause: error });
  if (error instanceof KeyIntegrityError) return new AppError('INTERNAL', 'internal error', { cause: error });
  return undefined;
}

function toAppError(error: unknown): AppError {
  if (isAppError(error)) return error;
  const storage = storageError(error);
  if (storage) return storage;
  const fe = error as Partial<FastifyError>;
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new AppError(mapped, fe.message ?? mapped, { cause: error });
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code = (Object.keys(ERROR_STATUS) as ErrorCode[]).find((c) => ERROR_STATUS[c] === fe.statusCode) ?? 'BAD_REQUEST';
    return new AppError(code, fe.message ?? code, { cause: error });
  }
  return new AppError('INTERNAL', 'internal error', { cause: error });
}

export function sendError(reply: FastifyReply, error: AppError): FastifyReply {
  const body: ErrorBody = { error: error.code, message: error.expose ? error.message : 'The server could not complete the request.' };
  // An upload cut short by an error leaves unread bytes on the socket: do not reuse the connection.
  if (error.status === 413 || error.status === 400 || error.status === 415) reply.header('connection', 'close');
  return reply.code(error.status).type('application/json; charset=utf-8').send(body);
}

export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const appError = toAppError(error);
    if (error instanceof KeyIntegrityError) request.log.error({ security: true, err: error }, 'stored object or key failed its integrity check');
    else if (appError.status >= 500) request.log.error({ err: appError.cause ?? appError }, 'request failed');
    else request.log.info({ code: appError.code }, 'request refused');
    return sendError(reply, appError);
  });
  app.setNotFoundHandler((_request, reply) => sendError(reply, new AppError('NOT_FOUND', 'no such resource')));
}
