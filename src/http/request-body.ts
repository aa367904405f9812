// A JSON request body checked against its zod schema: the value, or 400 naming the first problem and where it is
// (admin, share-link and lifecycle routes alike).

import type { z } from 'zod';
import { AppError } from '../errors.js';

export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AppError('BAD_REQUEST', `invalid request body: ${issue ? `${issue.path.join('.') || '(body)'}: ${issue.message}` : 'malformed'}`);
  }
  return parsed.data;
}
