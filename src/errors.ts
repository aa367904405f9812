// The one error table (DESIGN.md "One error table"): a closed set of codes, each with its HTTP status.
// Services throw AppError; the HTTP error handler is the only place that turns one into a response.
// STOW per-instance failures are *values* (see services/store-instances.ts), never AppErrors.

export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  INVALID_QUERY: 400,
  INVALID_UID: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  NOT_ACCEPTABLE: 406,
  CONFLICT: 409,
  GONE: 410,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  INTERNAL: 500,
  SERVICE_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** 4xx messages are safe to show the client; 5xx bodies stay generic and the cause goes to the log. */
  readonly expose: boolean;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.expose = this.status < 500;
  }
}

export const isAppError = (e: unknown): e is AppError => e instanceof AppError;
