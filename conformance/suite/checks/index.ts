// Every check, in the order they run: STOW first (the partial-success check stores one more instance).
import type { Check } from '../suite.js';
import { generalChecks } from './general.js';
import { qidoChecks } from './qido.js';
import { renderedChecks } from './rendered.js';
import { stowChecks } from './stow.js';
import { wadoRsChecks } from './wado-rs.js';
import { wadoUriChecks } from './wado-uri.js';

export const checks: Check[] = [...stowChecks, ...qidoChecks, ...wadoRsChecks, ...renderedChecks, ...wadoUriChecks, ...generalChecks];

const names = new Set<string>();
for (const c of checks) {
  if (names.has(c.name)) throw new Error(`two checks are named ${c.name}`);
  names.add(c.name);
}
