// PHI at rest (issue 4, "Done when" 1): store the shared corpus, then search every byte of the data folder and
// the key folder (encrypted index and its WAL/SHM, index.key.json, blobs/objects, blobs/staging, the
// application log written into the data folder) for the patients' names and IDs, and find none.
//
// The needles: PatientName (0010,0010) and PatientID (0010,0020) of every stored file, (1) as the raw value
// bytes in the file's own character set (ISO 2022 escapes, Latin-1, GB18030 ... as they are on the wire),
// (2) decoded, as UTF-8 (what a JSON index or log would hold), each PN component group (Alphabetic,
// Ideographic, Phonetic) and the index's case/accent-folded groups and words (normalize.ts), (3) the same from
// QIDO (what the index decoded). Exclusions, because they would match by chance and prove nothing:
// - needles shorter than MIN_NEEDLE_BYTES bytes: a random L-byte string occurs in N bytes of ciphertext with
//   probability about N / 256^L; for the ~20 MB searched, L = 4 would make the test flaky (~0.5% per needle),
//   L = 6 keeps it below 1e-6 per needle. So IDs such as "0001" or "12345" are not searched; the files left
//   without any needle (empty, generic or short names and IDs) are few (more than 100 carry one: asserted);
// - values without a letter or digit ("^^^^", empty) and generic placeholders (GENERIC).
//
// The test can fail: the same scan over a plain copy of the stored files (what an unencrypted store would hold)
// must find a needle of every stored file (control).
import fs from 'node:fs';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import type { DestinationStream } from 'pino';
import t from 'tap';
import { bufferSource } from '../../src/dicom/byte-source.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import type { DicomJsonDataset } from '../../src/dicom/json-model.js';
import { readMeta } from '../../src/dicom/part10-meta.js';
import { personNameGroups, personNameWords } from '../../src/index/query/normalize.js';
import { TEST_LIMITS } from '../dicom/synthetic.js';
import { testApp } from '../helpers/app.js';
import { multipartBody } from '../helpers/multipart.js';
import { tempDir } from '../helpers/temp-dir.js';
import { indexRows, testFile } from '../helpers/testdata.js';

const MIN_NEEDLE_BYTES = 6;
/** Placeholders, not patients: "ANONYMIZED" in a log line would not identify anyone. */
const GENERIC = new Set(['ANONYMIZED', 'ANONYMOUS']);
const DEFLATED = '1.2.840.10008.1.2.1.99';
const BATCH_FILES = 16;
const PATIENT_NAME = '00100010';
const PATIENT_ID = '00100020';

/** The application log into a file that can only be named once the data folder exists (it must be new when opened). */
class LateFileDestination implements DestinationStream {
  private buffered: string[] = [];
  private file: string | undefined;
  write(line: string): void {
    if (this.file) fs.appendFileSync(this.file, line);
    else this.buffered.push(line);
  }
  openAt(file: string): void {
    fs.writeFileSync(file, this.buffered.join(''));
    this.buffered = [];
    this.file = file;
  }
}

/** Needles of one source, as bytes, with a label that is safe to print (a hash prefix, never the value). */
class Needles {
  readonly list = new Map<string, Buffer>();
  add(value: Buffer | string | undefined): void {
    if (value === undefined) return;
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : trimPadding(value);
    const text = bytes.toString('latin1');
    if (bytes.length < MIN_NEEDLE_BYTES || !/[\p{L}\p{N}\x80-\xff]/u.test(text) || GENERIC.has(text.trim().toUpperCase())) return;
    this.list.set(bytes.toString('hex'), bytes);
  }
  addPersonName(value: unknown): void {
    const pn = value as { Alphabetic?: string; Ideographic?: string; Phonetic?: string } | undefined;
    if (!pn || typeof pn !== 'object') return;
    for (const group of [pn.Alphabetic, pn.Ideographic, pn.Phonetic]) {
      this.add(group);
      this.add(group?.replace(/[\^ ]+$/, ''));
    }
    const folded = personNameGroups(pn);
    for (const g of folded) this.add(g);
    for (const w of personNameWords(folded)) this.add(w);
    for (const group of [pn.Alphabetic, pn.Ideographic, pn.Phonetic]) for (const w of group?.split(/[\^=]/) ?? []) this.add(w.trim());
  }
  addDataset(ds: DicomJsonDataset): void {
    for (const v of ds[PATIENT_NAME]?.Value ?? []) this.addPersonName(v);
    for (const v of ds[PATIENT_ID]?.Value ?? []) if (typeof v === 'string') this.add(v.trim());
  }
}

/** Values are padded to even length with a space (text) or NUL (UI); the padding is not part of the name. */
function trimPadding(b: Buffer): Buffer {
  let end = b.length;
  while (end > 0 && (b[end - 1] === 0x20 || b[end - 1] === 0x00)) end--;
  return b.subarray(0, end);
}

/**
 * The raw value bytes of every (0010,0010) and (0010,0020) element in a dataset's bytes, found by their headers
 * (Explicit VR LE, Implicit VR LE, Explicit VR BE): the names in the file's own character set.
 */
function rawValues(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const patterns = [
    { tag: Buffer.from([0x10, 0x00, 0x10, 0x00]), vr: 'PN', le: true },
    { tag: Buffer.from([0x10, 0x00, 0x20, 0x00]), vr: 'LO', le: true },
    { tag: Buffer.from([0x00, 0x10, 0x00, 0x10]), vr: 'PN', le: false },
    { tag: Buffer.from([0x00, 0x10, 0x00, 0x20]), vr: 'LO', le: false },
  ];
  for (const { tag, vr, le } of patterns) {
    for (let at = bytes.indexOf(tag); at >= 0 && at + 8 <= bytes.length; at = bytes.indexOf(tag, at + 1)) {
      let length: number;
      if (bytes.toString('latin1', at + 4, at + 6) === vr) length = le ? bytes.readUInt16LE(at + 6) : bytes.readUInt16BE(at + 6);
      else if (le) length = bytes.readUInt32LE(at + 4);
      else continue;
      if (length === 0 || length > 324 || at + 8 + length > bytes.length) continue; // PN: 3 x 64 chars + escapes; a chance match otherwise
      out.push(bytes.subarray(at + 8, at + 8 + length));
    }
  }
  return out;
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.join(d.parentPath, d.name));
}

/** Which needles occur in which files: relative file name -> hex needles found. */
function search(roots: string[], needles: Map<string, Buffer>): { files: string[]; bytes: number; hits: Map<string, string[]> } {
  const files = roots.flatMap(filesUnder);
  const hits = new Map<string, string[]>();
  let bytes = 0;
  for (const file of files) {
    const content = fs.readFileSync(file);
    bytes += content.length;
    const found = [...needles].filter(([, n]) => content.includes(n)).map(([hex]) => hex);
    if (found.length > 0) hits.set(file, found);
  }
  return { files, bytes, hits };
}

/** The dataset as stored, inflated when the transfer syntax is Deflated (the names are inside the deflate stream). */
async function datasetBytes(file: Buffer, transferSyntaxUID: string): Promise<Buffer> {
  if (transferSyntaxUID !== DEFLATED) return file;
  const { datasetOffset } = await readMeta(bufferSource(file), TEST_LIMITS);
  return Buffer.concat([file.subarray(0, datasetOffset), inflateRawSync(file.subarray(datasetOffset))]);
}

t.test('no patient name or ID anywhere in the data or key folder after storing the shared corpus', async (t) => {
  const log = new LateFileDestination();
  const { app, dataDir, config, index, auditor, audit } = await testApp(t, { DICOMVAULT_LOG_LEVEL: 'trace' }, { logTo: log });
  const logFile = path.join(dataDir, 'dicomvault.log');
  log.openAt(logFile);

  // STOW every file in batches; keep the ones the archive accepted.
  const rows = indexRows();
  const stored: { path: string; sopUid: string; bytes: Buffer; dataset?: Buffer }[] = [];
  for (let i = 0; i < rows.length; i += BATCH_FILES) {
    const batch = rows.slice(i, i + BATCH_FILES).map((r) => ({ ...r, bytes: testFile(r.path) }));
    const { contentType, body } = multipartBody(batch.map((b) => b.bytes));
    const res = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType, accept: 'application/dicom+json' }, payload: body });
    t.ok([200, 202, 409].includes(res.statusCode), `batch ${i / BATCH_FILES}: ${res.statusCode}`);
    const referenced = new Set(((res.json() as DicomJsonDataset)['00081199']?.Value ?? []).map((item) => ((item as DicomJsonDataset)['00081155']!.Value as string[])[0]));
    for (const b of batch) if (referenced.has(b.sopUid)) stored.push(b);
  }

  // Needles per stored file (for the control), and all of them together.
  const all = new Needles();
  const perFile = new Map<string, Needles>();
  const sops = new Set<string>();
  for (const f of [...stored]) {
    const read = await readInstance(bufferSource(f.bytes), TEST_LIMITS);
    // pydicom ships variants of one object under one SOP Instance UID: the first readable one is stored, the
    // others are refused (0111, or C000 when unreadable) while their UID is in the response.
    if (!read.ok || sops.has(f.sopUid)) {
      stored.splice(stored.indexOf(f), 1);
      continue;
    }
    sops.add(f.sopUid);
    const mine = new Needles();
    f.dataset = await datasetBytes(f.bytes, read.instance.transferSyntaxUID);
    for (const raw of rawValues(f.dataset)) mine.add(raw);
    mine.addDataset(read.instance.dataset);
    perFile.set(f.path, mine);
    for (const [hex, n] of mine.list) all.list.set(hex, n);
  }
  // What the index decoded, through QIDO (instance level: files of one study may differ).
  const qido = await app.inject({ method: 'GET', url: `/dicomweb/instances?includefield=${PATIENT_NAME}&includefield=${PATIENT_ID}&limit=${config.qido.maxLimit}` });
  t.equal(qido.statusCode, 200);
  const found = qido.json() as DicomJsonDataset[];
  t.ok(stored.length > 150, `${stored.length} files stored`);
  t.equal(found.length, stored.length, 'QIDO lists every stored instance');
  t.equal(index.counts().instances, stored.length);
  for (const ds of found) all.addDataset(ds);

  const withNeedles = [...perFile].filter(([, n]) => n.list.size > 0);
  t.ok(withNeedles.length > 100, `${withNeedles.length} stored files carry a name or ID long enough to search for`);
  t.ok(all.list.size > 50, `${all.list.size} distinct needles`);
  t.ok(
    [...all.list.values()].some((n) => /[^\x00-\x7f]/.test(n.toString('latin1'))),
    'non-ASCII needles are included (raw ISO 2022 / Latin-1 bytes and UTF-8)',
  );

  // The audit trail (issue 6) holds PHI too: every STOW and QIDO above left records naming the patients. Written
  // to disk before the scan; control: decrypted, they do name stored patients (so the scan of the file means something).
  await auditor.flush();
  const audited = new Set<string>();
  for await (const e of audit.read()) for (const o of e.record.objects) if (o.typeCode === 1) audited.add(o.id);
  t.ok([...audited].some((id) => all.list.has(Buffer.from(id, 'utf8').toString('hex'))), `the decrypted audit records name stored patients (${audited.size} patient IDs)`);

  // The data folder as the running server leaves it (index open: its WAL and SHM are there), and the key folder.
  const keyDir = path.dirname(config.keys.file);
  const scanned = search([dataDir, keyDir], all.list);
  const names = scanned.files.map((f) => path.relative(path.dirname(dataDir), f));
  for (const expected of ['data/index.sqlite', 'data/index.sqlite-wal', 'data/index.key.json', 'data/dicomvault.log', 'data/audit/audit-000001.jsonl', 'keys/kek.json']) {
    t.ok(names.includes(expected), `searched ${expected}`);
  }
  t.ok(names.filter((n) => n.startsWith('data/blobs/objects/')).length >= stored.length, 'searched every stored object');
  t.ok(fs.statSync(logFile).size > 1000, 'the application log has content (trace level)');
  t.comment(`searched ${scanned.files.length} files, ${scanned.bytes} bytes, for ${all.list.size} needles`);
  const leaks = [...scanned.hits].map(([file, hex]) => `${path.relative(path.dirname(dataDir), file)}: ${hex.length} needle(s)`);
  t.same(leaks, [], 'no name or ID in any file');

  // Control: the same search over a plain copy of the stored files (Deflated datasets inflated, as a store
  // without encryption would index them) finds every file's own needles.
  const plain = tempDir(t, 'dicomvault-plain-');
  stored.forEach((f, i) => fs.writeFileSync(path.join(plain, `${i}.dcm`), f.dataset!));
  const control = search([plain], all.list);
  const missed = stored.filter((f, i) => (perFile.get(f.path)!.list.size > 0) && !control.hits.get(path.join(plain, `${i}.dcm`))?.length);
  t.same(missed.map((f) => f.path), [], 'the search finds the names in plaintext copies of every file that has one');
});
