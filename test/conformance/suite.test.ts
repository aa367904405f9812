// The black-box conformance suite (conformance/suite/) against this server as operators run it: `dicomvault
// serve` as a process on a mutual-TLS listener with its development PKI. Every result must match the
// ledger's "dicomvault" entry (conformance/suite/expectations.json), which expects only recorded bugs to fail.
import path from 'node:path';
import t from 'tap';
import { loadLedger, runSuite, staleEntries } from '../../conformance/suite/run.js';
import { formatResult } from '../../conformance/suite/suite.js';
import { startServer } from '../e2e/cli-process.js';
import { tempDir } from '../helpers/temp-dir.js';
import { TESTDATA } from '../helpers/testdata.js';

t.test('conformance suite: every check as the ledger expects, against dicomvault serve over mutual TLS', async (t) => {
  const server = await startServer(t, tempDir(t));
  const expected = loadLedger(path.resolve(import.meta.dirname, '../../conformance/suite/expectations.json')).dicomvault ?? {};
  t.same(staleEntries(expected), [], 'the ledger names only existing checks');
  // The second run finds the first run's data on the server: checks must not depend on an empty archive.
  for (const run of ['empty server', 'server holding the first run']) {
    const results = await runSuite({ base: server.base, tls: server.tls, testdata: TESTDATA, expected });
    t.ok(results.length >= 40, `${run}: ${results.length} checks ran`);
    for (const r of results) t.ok(r.asExpected, `${run}: ${formatResult(r)}`);
  }
  t.equal(await server.stop(), 0, 'graceful stop');
});
