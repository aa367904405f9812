// Every configuration key as a dotted path, read off the schema (for the README check and error messages).

import type { z } from 'zod';
import { configSchema } from './schema.js';

interface Def {
  type: string;
  innerType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
}
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

function leaves(schema: z.ZodType, path: string[]): string[][] {
  let def = defOf(schema);
  // Unwrap default / prefault / optional wrappers down to the value's own schema.
  while (def.innerType) def = defOf(def.innerType);
  if (def.type === 'object' && def.shape) return Object.entries(def.shape).flatMap(([k, v]) => leaves(v, [...path, k]));
  return [path];
}

export function configKeys(): string[][] {
  return leaves(configSchema, []);
}
