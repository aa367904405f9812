// The in-memory thumbnail cache (services/thumbnail-cache.ts): bounded by bytes, least recently used out first,
// keyed by the stored bytes (a replaced instance is another key) and the parameters.
import t from 'tap';
import type { StoredInstanceRef } from '../../src/index/index-store.js';
import { ThumbnailCache } from '../../src/services/thumbnail-cache.js';

const ref = (blobKey: string, sha256 = 'a'): StoredInstanceRef =>
  ({ studyInstanceUID: '1.2', seriesInstanceUID: '1.2.3', sopInstanceUID: '1.2.3.4', sopClassUID: '1.2.840', transferSyntaxUID: '1.2.840.10008.1.2.1', blobKey, size: 1, sha256 }) as StoredInstanceRef;
const jpeg = (n: number) => ({ mediaType: 'image/jpeg', bytes: Buffer.alloc(n, n % 256) });

t.test('keys: blob, bytes, frame and box all count', async (t) => {
  const box = { vw: 128, vh: 128 };
  const k = ThumbnailCache.key(ref('b1'), 1, box);
  t.not(k, ThumbnailCache.key(ref('b1', 'other'), 1, box), 'other bytes (a replaced instance): another key');
  t.not(k, ThumbnailCache.key(ref('b2'), 1, box), 'another blob');
  t.not(k, ThumbnailCache.key(ref('b1'), 2, box), 'another frame');
  t.not(k, ThumbnailCache.key(ref('b1'), 1, { vw: 64, vh: 128 }), 'another box');
});

t.test('bounded by bytes, least recently used out first; forget; 0 keeps nothing', async (t) => {
  const cache = new ThumbnailCache(300);
  cache.set('a', jpeg(100));
  cache.set('b', jpeg(100));
  cache.set('c', jpeg(100));
  t.ok(cache.get('a'), 'a used: now the most recent');
  cache.set('d', jpeg(100));
  t.notOk(cache.get('b'), 'b, the least recently used, went out');
  t.ok(cache.get('a') && cache.get('c') && cache.get('d'));
  t.same(cache.size, { entries: 3, bytes: 300 });
  cache.set('huge', jpeg(301));
  t.notOk(cache.get('huge'), 'larger than the whole budget: not kept');
  t.same(cache.size, { entries: 3, bytes: 300 }, 'and nothing evicted for it');
  cache.set(`${'blob1'}\0x`, jpeg(10));
  cache.forget('blob1');
  t.notOk(cache.get(`${'blob1'}\0x`), 'forget drops a blob');
  const none = new ThumbnailCache(0);
  none.set('a', jpeg(1));
  t.notOk(none.get('a'), 'maxBytes 0: nothing kept');
});
