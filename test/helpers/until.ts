/** Polls `check` every 10 ms until it holds; rejects after `timeoutMs`. Resolves with the milliseconds it took. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - started;
}
