// npm run conformance -- --base URL [--cert F --key F --ca F] [--server NAME] [--json FILE]
//   [--wado-uri URL] [--testdata DIR] [--expectations FILE]
// Prints one line per check and exits 1 when a result differs from the expectations ledger (or the ledger
// names a check that does not exist), 2 on a usage error.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadLedger, runSuite, staleEntries } from './run.js';
import { formatResult } from './suite.js';

const USAGE = 'usage: npm run conformance -- --base URL [--cert F --key F --ca F] [--server NAME] [--json FILE] [--wado-uri URL] [--testdata DIR] [--expectations FILE]\n';
const here = path.dirname(fileURLToPath(import.meta.url));

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        base: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        ca: { type: 'string' },
        server: { type: 'string', default: 'dicomvault' },
        json: { type: 'string' },
        'wado-uri': { type: 'string' },
        testdata: { type: 'string' },
        expectations: { type: 'string', default: path.join(here, 'expectations.json') },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.base || (values.cert === undefined) !== (values.key === undefined)) {
    process.stderr.write(USAGE);
    return 2;
  }
  const read = (f: string | undefined) => (f === undefined ? undefined : fs.readFileSync(f));
  const tls = Object.fromEntries(Object.entries({ ca: read(values.ca), cert: read(values.cert), key: read(values.key) }).filter(([, v]) => v !== undefined));
  const server = values.server!;
  const ledger = loadLedger(values.expectations!);
  if (!ledger[server]) process.stdout.write(`note: the ledger has no entry for "${server}": every check is expected to pass\n`);
  const expected = ledger[server] ?? {};

  const results = await runSuite({
    base: values.base,
    tls,
    expected,
    ...(values['wado-uri'] ? { wadoUri: values['wado-uri'] } : {}),
    ...(values.testdata ? { testdata: values.testdata } : {}),
    onResult: (r) => process.stdout.write(`${formatResult(r)}\n`),
  });
  const stale = staleEntries(expected);
  for (const name of stale) process.stdout.write(`STALE ledger entry for ${server} names no check: ${name}\n`);
  const count = (f: (r: (typeof results)[number]) => boolean) => results.filter(f).length;
  const differ = count((r) => !r.asExpected);
  process.stdout.write(
    `${server}: ${results.length} checks, ${count((r) => r.outcome === 'pass')} passed, ${count((r) => r.outcome === 'fail')} failed ` +
      `(${count((r) => r.outcome === 'fail' && r.expectedFailure !== undefined)} expected), ${differ} differ from the ledger\n`,
  );
  if (values.json) {
    fs.writeFileSync(values.json, `${JSON.stringify({ server, base: values.base, date: new Date().toISOString(), results }, null, 2)}\n`);
  }
  return differ > 0 || stale.length > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`conformance: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
