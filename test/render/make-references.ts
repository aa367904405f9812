// Called by scripts/make-render-references.sh: scales DCMTK's renderings to the committed 64 x 64 references
// (reference-image.ts, the same scaling the test applies to dicomvault's output) and lists them in
// test/fixtures/render/references.json. Uses sharp only, never src/.
import fs from 'node:fs';
import path from 'node:path';
import { referenceName, toReference, type Reference } from './reference-image.js';

const [listFile, outDir] = process.argv.slice(2);
if (!listFile || !outDir) throw new Error('usage: make-references.ts <list.tsv> <out dir>');
fs.mkdirSync(outDir, { recursive: true });
for (const f of fs.readdirSync(outDir)) if (f.endsWith('.png')) fs.unlinkSync(path.join(outDir, f));
const references: Reference[] = [];
for (const line of fs.readFileSync(listFile, 'utf8').trim().split('\n')) {
  const [file, voi, status, png, err] = line.split('\t') as [string, string, string, string, string?];
  if (status !== 'ok' || !fs.existsSync(png)) {
    references.push({ path: file, voi, error: `dcmj2pnm: ${err ?? 'failed'}`.slice(0, 200) });
    continue;
  }
  const ref = await toReference(fs.readFileSync(png));
  const name = referenceName(file);
  fs.writeFileSync(path.join(outDir, name), ref.png);
  references.push({ path: file, voi, reference: name });
}
fs.writeFileSync(path.join(outDir, 'references.json'), `${JSON.stringify({ tool: 'dcmj2pnm (DCMTK)', size: 64, references }, null, 1)}\n`);
