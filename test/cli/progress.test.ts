import t from 'tap';
import { progressOn } from '../../src/cli/progress.js';

t.test('a terminal gets one bar redrawn in place', async (t) => {
  let out = '';
  let now = 0;
  const p = progressOn({ isTTY: true, write: (s: string) => (out += s) }, 'keys', () => now);
  p.update(0, 4);
  now += 50;
  p.update(1, 4); // too soon: not drawn yet
  now += 100;
  p.update(2, 4);
  p.update(4, 4); // the end is always drawn
  p.end();
  p.end();
  t.equal(out, `\rkeys [${'-'.repeat(30)}] 0% 0/4\rkeys [${'#'.repeat(15)}${'-'.repeat(15)}] 50% 2/4\rkeys [${'#'.repeat(30)}] 100% 4/4\n`);
});

t.test('a pipe gets plain lines, at most one a second, and the last', async (t) => {
  let out = '';
  let now = 0;
  const p = progressOn({ write: (s: string) => (out += s) }, 'keys', () => now);
  p.update(0, 10);
  now += 500;
  p.update(5, 10);
  now += 100;
  p.update(6, 10);
  p.end();
  t.equal(out, 'keys: 0/10 (0%)\nkeys: 6/10 (60%)\n');
});
