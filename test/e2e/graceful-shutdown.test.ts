// Graceful shutdown under load (issue 8 item 5: stop accepting, finish in-flight uploads, close the index), on a
// real `dicomvault serve` process: SIGTERM in the middle of a slow multi-instance STOW upload. The upload still
// gets its 200 with every instance; new connections are refused from the signal on; an idle keep-alive
// connection (and the upload's own, once answered) does not hold the stop up; the process exits 0; the audit log
// ends with Application Stop after the store record and verifies; after a restart every instance comes back
// byte-equal and nothing is left over (no staged file, no pending row, no blob without its row).
// And the bound: an upload still trickling at server.shutdownTimeoutMs is cut, the server stops anyway, and the
// cut upload leaves nothing behind.
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { openStorage } from '../../src/compose.js';
import { loadConfig } from '../../src/config/load.js';
import { runCli } from '../helpers/cli-process.js';
import { request, type Response } from '../helpers/https-client.js';
import { multipartBody } from '../helpers/multipart.js';
import { tempDir } from '../helpers/temp-dir.js';
import { type GeneratedInstance, generateCt } from '../helpers/generated-ct.js';
import { type RunningServer, auditRecordsOf, startServer } from './cli-process.js';

type Instance = GeneratedInstance;

function generate(dir: string, count: number, seed: number): Instance[] {
  return generateCt(dir, { count, studies: 2, series: 1, seed });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The SOP Instance UIDs of a STOW response's ReferencedSOPSequence (0008,1199) > ReferencedSOPInstanceUID (0008,1155). */
function referencedSops(body: Buffer): string[] {
  const json = JSON.parse(body.toString('utf8')) as Record<string, { Value?: Record<string, { Value?: string[] }>[] }>;
  return (json['00081199']?.Value ?? []).map((item) => item['00081155']!.Value![0]!);
}

interface Upload {
  /** The answer, or the error that ended the request. */
  done: Promise<Response | Error>;
  /** Writes `bytes` and resolves once they are handed to the socket. */
  write(bytes: Buffer): Promise<void>;
  end(): void;
}

/** A STOW whose body the test writes piece by piece, on `agent` (keep-alive, as gateways send). */
function upload(server: RunningServer, agent: https.Agent, contentType: string, length: number): Upload {
  const req = https.request(`${server.base}/studies`, {
    method: 'POST',
    agent,
    headers: { 'content-type': contentType, 'content-length': String(length), accept: 'application/dicom+json' },
  });
  const done = new Promise<Response | Error>((resolve) => {
    req.on('error', resolve);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', resolve);
    });
  });
  return {
    done,
    write: (bytes) => new Promise((resolve) => req.write(bytes, () => resolve())),
    end: () => req.end(),
  };
}

/** Polls fresh connections until one is refused (ECONNREFUSED); every answer (or error code) before that is recorded. */
async function refusedWithin(server: RunningServer, ms: number): Promise<{ refused: boolean; answers: (number | string)[] }> {
  const answers: (number | string)[] = [];
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      answers.push((await request(`${server.base}/studies`, server.tls)).status);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      if (code === 'ECONNREFUSED') return { refused: true, answers };
      answers.push(code);
    }
    await sleep(20);
  }
  return { refused: false, answers };
}

function filesUnder(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => d.name) : [];
}

/** With the server stopped: no staged file, no pending row, every blob file has its index row and the reverse. */
async function nothingLeftOver(t: Test, cwd: string, instances: number): Promise<void> {
  const config = loadConfig({ env: { DICOMVAULT_STORAGE_DATA_DIR: path.join(cwd, 'data'), DICOMVAULT_KEYS_FILE: path.join(cwd, 'keys/kek.json') } });
  const storage = await openStorage(config, { audit: false });
  try {
    const rows = storage.index.listAllInstances({ limit: 1_000_000 }).map((r) => r.blobKey);
    const blobs = filesUnder(path.join(cwd, 'data/blobs/objects'));
    t.equal(rows.length, instances, `${instances} index rows`);
    t.same(blobs.filter((key) => !rows.includes(key)), [], 'no blob without its index row');
    t.same(rows.filter((key) => !blobs.includes(key)), [], 'no index row without its blob');
    t.same(storage.index.listPending(new Date(8.64e15)), [], 'no pending row');
    t.same(filesUnder(path.join(cwd, 'data/blobs/staging')), [], 'no staged file');
  } finally {
    await storage.close();
  }
}

t.test('SIGTERM during a slow multi-instance STOW: the upload completes, then the server stops cleanly', async (t) => {
  const cwd = tempDir(t);
  const instances = generate(tempDir(t), 6, 4242);
  // A long keep-alive timeout: a connection left idle must not hold the stop up until it expires.
  const server = await startServer(t, cwd, { DICOMVAULT_SERVER_KEEP_ALIVE_TIMEOUT_MS: '120000' });
  const agent = new https.Agent({ keepAlive: true, ...server.tls });
  t.teardown(() => agent.destroy());

  // An idle keep-alive connection, as a gateway keeps between requests.
  const idleAgent = new https.Agent({ keepAlive: true, ...server.tls });
  t.teardown(() => idleAgent.destroy());
  const first = await new Promise<number>((resolve, reject) =>
    https.get(`${server.base}/studies`, { agent: idleAgent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject),
  );
  t.equal(first, 204, 'a QIDO leaves an idle keep-alive connection open');

  const { contentType, body } = multipartBody(instances.map((i) => i.bytes));
  const up = upload(server, agent, contentType, body.length);
  const quarter = body.length >> 2;
  await up.write(body.subarray(0, quarter));
  await sleep(300);

  const signalled = Date.now();
  const exited = server.stop();
  const refusal = await refusedWithin(server, 5000);
  t.ok(refusal.refused, 'new connections are refused after SIGTERM');
  // In the moment between the signal and the listener's close, a connection may still be taken: answered (204,
  // or 503 once closing) or, holding no request yet, reaped as idle (ECONNRESET). Nothing else.
  t.ok(
    refusal.answers.every((s) => s === 204 || s === 503 || s === 'ECONNRESET'),
    `before the listener closed: ${refusal.answers.join(', ') || 'nothing'}`,
  );

  // The rest of the body, slowly: 8 pieces 250 ms apart, all after the signal.
  const rest = body.subarray(quarter);
  const piece = Math.ceil(rest.length / 8);
  for (let i = 0; i < rest.length; i += piece) {
    await up.write(rest.subarray(i, i + piece));
    await sleep(250);
  }
  up.end();
  const answer = await up.done;
  if (answer instanceof Error) throw answer;
  const answered = Date.now();
  t.equal(answer.status, 200, 'the in-flight upload is answered 200');
  t.same(referencedSops(answer.body).sort(), instances.map((i) => i.sop).sort(), 'listing every instance');
  t.ok(answered - signalled > 2000, `answered ${answered - signalled} ms after SIGTERM`);

  const code = await exited;
  const stopped = Date.now();
  t.equal(code, 0, 'the process exits 0');
  // Neither the idle keep-alive connection nor the upload's own (keep-alive, 120 s) holds the stop up.
  t.ok(stopped - answered < 10_000, `stopped ${stopped - answered} ms after the answer`);

  const verified = await runCli(cwd, ['audit', 'verify']);
  t.equal(verified.code, 0, verified.code === 0 ? 'dicomvault audit verify passes' : verified.stdout + verified.stderr);
  const records = await auditRecordsOf(cwd);
  const storeAt = records.findIndex((r) => r.eventId.code === '110104' && r.action === 'C');
  t.ok(storeAt >= 0, 'the upload has its store record (110104 C)');
  t.match(records.at(-1), { eventId: { code: '110100' }, eventTypes: [{ code: '110121' }] }, 'the last record is Application Stop');
  t.ok(storeAt < records.length - 1, 'after the store record');

  const again = await startServer(t, cwd);
  t.notMatch(again.output().stdout, /removed leftovers of an interrupted write/, 'the restart finds nothing to sweep');
  for (const i of instances) {
    const res = await request(`${again.base}/studies/${i.study}/series/${i.series}/instances/${i.sop}`, again.tls, { headers: { accept: 'application/dicom' } });
    t.ok(res.status === 200 && res.body.equals(i.bytes), `${i.sop}: byte-equal after the restart`);
  }
  t.equal(await again.stop(), 0);
  await nothingLeftOver(t, cwd, instances.length);
});

t.test('an upload still running at server.shutdownTimeoutMs is cut; the server stops anyway and nothing of it is kept', async (t) => {
  const cwd = tempDir(t);
  const instances = generate(tempDir(t), 4, 4343);
  const TIMEOUT = 2000;
  const server = await startServer(t, cwd, { DICOMVAULT_SERVER_SHUTDOWN_TIMEOUT_MS: String(TIMEOUT) });
  const agent = new https.Agent({ keepAlive: false, ...server.tls });
  t.teardown(() => agent.destroy());
  const { contentType, body } = multipartBody(instances.map((i) => i.bytes));
  const up = upload(server, agent, contentType, body.length);
  const half = body.length >> 1;
  await up.write(body.subarray(0, half));
  await sleep(300);

  const signalled = Date.now();
  const exited = server.stop();
  // Keeps trickling, far past the shutdown timeout, until the server cuts the connection.
  let cut = false;
  void up.done.then(() => (cut = true));
  for (let i = half; i < body.length - 1 && !cut; i += 1024) {
    await up.write(body.subarray(i, Math.min(i + 1024, body.length - 1)));
    await sleep(200);
  }
  const answer = await up.done;
  t.ok(answer instanceof Error, `the upload is cut (${answer instanceof Error ? answer.message : answer.status})`);
  const code = await exited;
  const stopped = Date.now() - signalled;
  t.equal(code, 0, 'the process exits 0');
  t.ok(stopped >= TIMEOUT - 100 && stopped < TIMEOUT + 8000, `stopped ${stopped} ms after SIGTERM`);
  t.match(server.output().stdout, /shutdown timeout/, 'the cut is logged');

  const verified = await runCli(cwd, ['audit', 'verify']);
  t.equal(verified.code, 0, verified.code === 0 ? 'dicomvault audit verify passes' : verified.stdout + verified.stderr);
  t.match((await auditRecordsOf(cwd)).at(-1), { eventTypes: [{ code: '110121' }] }, 'the last record is Application Stop');

  const again = await startServer(t, cwd);
  // The cut request cleans up after itself, unless the storage closed first: then the start-up sweep does.
  t.comment(/removed leftovers of an interrupted write/.test(again.output().stdout) ? `the restart swept ${/"staged":\d+,"pending":\d+/.exec(again.output().stdout)?.[0] ?? 'leftovers'}` : 'the restart found nothing to sweep');
  const qido = await request(`${again.base}/instances`, again.tls, { headers: { accept: 'application/dicom+json' } });
  t.equal(qido.status, 204, 'nothing of the cut upload is listed');
  t.equal(await again.stop(), 0);
  await nothingLeftOver(t, cwd, 0);
});
