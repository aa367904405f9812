// The memory of a server process on this machine, from /proc (Linux): found by the TCP port it listens on.
// Used by the memory benchmarks (stow-memory.mjs, retrieve-memory.mjs). Node built-ins only.

import fs from 'node:fs';

/** PID of the process listening on a local TCP port: /proc/net/tcp{,6} inode -> /proc/<pid>/fd socket link. */
export function pidListeningOn(port) {
  const inodes = new Set();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = fs.readFileSync(f, 'latin1'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length > 9 && c[3] === '0A' && parseInt(c[1].split(':')[1], 16) === port) inodes.add(c[9]);
    }
  }
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let fds = [];
    try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { continue; }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1])) return Number(pid);
      } catch { /* fd closed meanwhile */ }
    }
  }
  return undefined;
}

/** VmRSS and VmHWM of a process in MiB. */
export function processMemory(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
  const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}
