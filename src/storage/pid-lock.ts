// A single-writer lock file holding the owner's process id (the audit log's audit/.lock): created with O_EXCL,
// so of two processes racing for it exactly one wins; a lock whose process no longer exists (process.kill(pid, 0)
// fails with ESRCH: the owner crashed or was killed) is stale and taken over. The owner removes it when done.
// Limits (both need an operator): a stale lock whose pid was reused by an unrelated live process looks held;
// two processes taking over the same stale lock at the same instant can both succeed.

import fs from 'node:fs';

/** How long a lock file without a readable pid (its owner is between create and write) counts as held. */
const UNWRITTEN_GRACE_MS = 2000;

/** The lock is held by a live process (`pid`; 0 when its pid is not written yet). */
export class LockHeldError extends Error {
  override name = 'LockHeldError';
  constructor(
    readonly file: string,
    readonly pid: number,
  ) {
    super(pid > 0 ? `${file} is held by process ${pid}` : `${file} is being taken by another process`);
  }
}

/** Whether a process with this id exists (EPERM: it does, under another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes `file` for this process, or throws LockHeldError. Returns the release function (idempotent). */
export function acquirePidLock(file: string): () => void {
  const mine = `${process.pid}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(file, mine, { flag: 'wx', mode: 0o600 });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw e;
      let text: string;
      let age: number;
      try {
        text = fs.readFileSync(file, 'utf8');
        age = Date.now() - fs.statSync(file).mtimeMs;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
        throw err;
      }
      const pid = /^\d+\n?$/.test(text) ? Number.parseInt(text, 10) : Number.NaN;
      if (Number.isSafeInteger(pid) && pid > 0 && processAlive(pid)) throw new LockHeldError(file, pid);
      if (Number.isNaN(pid) && age < UNWRITTEN_GRACE_MS) throw new LockHeldError(file, 0);
      fs.rmSync(file, { force: true });
    }
  }
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    try {
      // Never remove a lock another process took over (after this one was judged stale).
      if (fs.readFileSync(file, 'utf8') === mine) fs.rmSync(file, { force: true });
    } catch {
      // already gone
    }
  };
}
