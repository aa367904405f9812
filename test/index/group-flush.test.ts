// The index log's group commit (issue 8): one flush at a time, and whoever arrives during one shares the next.
import t from 'tap';
import { GroupFlush } from '../../src/index/sqlite/group-flush.js';

/** A flush the test completes by hand, counting how many were started. */
function manualFlushes() {
  const started: { resolve(): void; reject(e: Error): void }[] = [];
  const flush = new GroupFlush(
    () =>
      new Promise<void>((resolve, reject) => {
        started.push({ resolve, reject });
      }),
  );
  return { flush, started };
}

const settled = async (p: Promise<unknown>) => {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return done;
};

t.test('callers that arrive during a flush share the next one, which starts after it', async (t) => {
  const { flush, started } = manualFlushes();
  const first = flush.flush();
  t.equal(started.length, 1, 'the first caller starts a flush at once');
  const waiting = [flush.flush(), flush.flush(), flush.flush()];
  t.equal(started.length, 1, 'no second flush while one runs');
  started[0]!.resolve();
  await first;
  t.notOk(await settled(Promise.race(waiting)), 'the running flush does not count for those who came during it');
  t.equal(started.length, 2, 'one flush for the three of them');
  started[1]!.resolve();
  await Promise.all(waiting);
  const later = flush.flush();
  t.equal(started.length, 3, 'idle again: the next caller starts one at once');
  started[2]!.resolve();
  await later;
});

t.test("a failed flush rejects its own callers only; the next one runs", async (t) => {
  const { flush, started } = manualFlushes();
  const first = flush.flush();
  const second = flush.flush();
  started[0]!.reject(new Error('EIO'));
  await t.rejects(first, /EIO/);
  for (let i = 0; i < 5 && started.length < 2; i++) await Promise.resolve();
  t.equal(started.length, 2, 'the waiting caller gets a flush of its own');
  started[1]!.resolve();
  await second;
  t.pass('resolved');
});
