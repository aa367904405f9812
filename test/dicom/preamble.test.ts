// The PS3.10 preamble guard (src/dicom/preamble.ts, SECURITY.md 8 case 26): what it keeps, what it zeroes, and that
// the answer does not depend on how the bytes were chunked.
import t from 'tap';
import { PREAMBLE_BYTES, PreambleGuard, preambleContent } from '../../src/dicom/preamble.js';

function through(bytes: Buffer, chunk: number): { out: Buffer; zeroed: PreambleGuard['zeroed'] } {
  const guard = new PreambleGuard();
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunk) out.push(...guard.pass(bytes.subarray(i, i + chunk)));
  out.push(...guard.end());
  return { out: Buffer.concat(out), zeroed: guard.zeroed };
}

const withPreamble = (head: Buffer) => Buffer.concat([head, Buffer.alloc(PREAMBLE_BYTES - head.length), Buffer.from('DICM'), Buffer.from('rest of the object')]);

t.test('what a preamble holds', async (t) => {
  t.equal(preambleContent(Buffer.alloc(128)), 'zeros');
  t.equal(preambleContent(withPreamble(Buffer.from('II*\0', 'latin1')).subarray(0, 128)), 'tiff');
  t.equal(preambleContent(withPreamble(Buffer.from('MM\0*', 'latin1')).subarray(0, 128)), 'tiff');
  for (const magic of ['MZ', '\x7fELF', '#!/bin/sh', '\xfe\xed\xfa\xce', '\xcf\xfa\xed\xfe']) {
    t.equal(preambleContent(withPreamble(Buffer.from(magic, 'latin1')).subarray(0, 128)), 'executable', JSON.stringify(magic));
  }
  t.equal(preambleContent(withPreamble(Buffer.from('vendor notes')).subarray(0, 128)), 'other');
});

t.test('zeroed or kept, whatever the chunking; the rest of the object untouched; the input never written to', async (t) => {
  for (const [name, head, zeroed] of [
    ['MZ', Buffer.from('MZ'), 'executable'],
    ['a viewer\'s name (other bytes: kept)', Buffer.from('Rubo DICOM Viewer demo'), undefined],
    ['zeros', Buffer.alloc(0), undefined],
    ['TIFF', Buffer.from('II*\0', 'latin1'), undefined],
  ] as const) {
    const sent = withPreamble(head);
    const copy = Buffer.from(sent);
    for (const chunk of [1, 7, 128, 129, 1000]) {
      const { out, zeroed: found } = through(sent, chunk);
      t.equal(found, zeroed, `${name}, chunks of ${chunk}: ${zeroed ?? 'kept'}`);
      t.same(out.subarray(PREAMBLE_BYTES), sent.subarray(PREAMBLE_BYTES), `${name}, chunks of ${chunk}: the rest as sent`);
      t.same(out.subarray(0, PREAMBLE_BYTES), zeroed ? Buffer.alloc(PREAMBLE_BYTES) : sent.subarray(0, PREAMBLE_BYTES));
    }
    t.same(sent, copy, `${name}: the chunks given were not changed`);
  }
});

t.test('an object shorter than the preamble passes as it is (the pre-scan refuses it)', async (t) => {
  const short = Buffer.from('MZ short');
  const { out, zeroed } = through(short, 3);
  t.same(out, short);
  t.equal(zeroed, undefined);
  t.same(through(Buffer.alloc(0), 1).out, Buffer.alloc(0), 'empty: nothing');
});
