// Second half of scripts/make-transcode-references.sh (kept under test/ so that it is typechecked with the tests): digests the third-party reference decodes it made and
// writes test/fixtures/transcode/references.json. Input: a TSV of (testdata path, source transfer syntax UID,
// tool, decoded file). Imports nothing from src/: the references must not depend on the code under test.
import fs from 'node:fs';
import { pixelDigest, type Reference } from './pixel-digest.js';

// PS3.5 Annex A / PS3.6 Annex A: the lossy ones among the syntaxes in the test data.
const LOSSY = new Set(['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51', '1.2.840.10008.1.2.4.81', '1.2.840.10008.1.2.4.91']);

const [listFile, outFile] = process.argv.slice(2);
if (!listFile || !outFile) throw new Error('usage: transcode-references.ts LIST.tsv OUT.json');

const references: Reference[] = [];
for (const line of fs.readFileSync(listFile, 'utf8').split('\n')) {
  if (!line) continue;
  const [path, uid, tool, decoded] = line.split('\t') as [string, string, string, string];
  const lossy = LOSSY.has(uid);
  const ref: Reference = { path, sourceTransferSyntax: uid, tool, lossy };
  if (tool !== 'failed' && tool !== 'unsupported') {
    try {
      ref.digest = pixelDigest(fs.readFileSync(decoded), lossy);
    } catch (err) {
      ref.error = (err as Error).message;
    }
  }
  references.push(ref);
}
fs.writeFileSync(outFile, `${JSON.stringify({ generatedBy: 'scripts/make-transcode-references.sh', references }, null, 1)}\n`);
console.error(`transcode-references: ${references.length} files, ${references.filter((r) => r.digest).length} digested`);
