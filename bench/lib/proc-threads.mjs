// What the threads of a process did, from /proc (Linux): context switches and time on a CPU, summed over every
// thread (a thread that ends meanwhile is skipped). Used by stow-wakeups.mjs and stow-blob-store-cpu.mjs.
// Node built-ins only.

import fs from 'node:fs';

/** { voluntary, involuntary, ns } of `pid` ('self' by default): voluntary switches are wake-ups after a sleep. */
export function threadCounters(pid = 'self') {
  const sum = { voluntary: 0, involuntary: 0, ns: 0 };
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8');
      sum.voluntary += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)[1]);
      sum.involuntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)[1]);
      sum.ns += Number(fs.readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return sum;
}
