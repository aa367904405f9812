// The rendered-resource parameters (PS3.18 10.4.1.1: quality, viewport, window), the viewport geometry, and the
// choice of the representative instance of a series or study.

import t, { type Test } from 'tap';
import { parseQuality, parseViewport, parseWindow, resolveViewport } from '../../src/render/render-params.js';
import { representativeInstance } from '../../src/render/representative.js';

const refused = (t: Pick<Test, 'throws'>, fn: () => unknown, what: string) =>
  t.throws(fn, { name: 'RenderError', failure: 'bad-parameter' }, what);

t.test('quality: an integer 1..100', async (t) => {
  t.equal(parseQuality('1'), 1);
  t.equal(parseQuality('100'), 100);
  for (const bad of ['0', '101', '50.5', '-1', '', 'high', '1e2']) refused(t, () => parseQuality(bad), `"${bad}" refused`);
});

t.test('window: center,width,function', async (t) => {
  t.same(parseWindow('40,400,linear'), { center: 40, width: 400, fn: 'LINEAR' });
  t.same(parseWindow('-600.5,1500,LINEAR-EXACT'), { center: -600.5, width: 1500, fn: 'LINEAR_EXACT' });
  t.same(parseWindow('0,0.5,sigmoid'), { center: 0, width: 0.5, fn: 'SIGMOID' });
  refused(t, () => parseWindow('40,400'), 'function missing');
  refused(t, () => parseWindow('40,0.5,linear'), 'linear width below 1');
  refused(t, () => parseWindow('40,0,sigmoid'), 'sigmoid width 0');
  refused(t, () => parseWindow('40,400,gamma'), 'unknown function');
  refused(t, () => parseWindow('4O,400,linear'), 'not a number');
});

t.test('viewport: vw,vh[,sx,sy,sw,sh]', async (t) => {
  t.same(parseViewport('512,256'), { vw: 512, vh: 256 });
  t.same(parseViewport('100,100,10,20,30,-40'), { vw: 100, vh: 100, sx: 10, sy: 20, sw: 30, sh: -40 });
  t.same(parseViewport('100,100,,,50,50'), { vw: 100, vh: 100, sw: 50, sh: 50 }, 'empty sx,sy take the default');
  for (const bad of ['100', '0,10', '10,-1', '1,2,3', '1,2,3,4,5', 'a,b', '10,10,-1,0,5,5', '1234567,1']) refused(t, () => parseViewport(bad), `"${bad}" refused`);
});

t.test('viewport geometry: fit keeping the aspect ratio, the source region, flips', async (t) => {
  t.match(resolveViewport(undefined, 640, 480), { left: 0, top: 0, width: 640, height: 480, outWidth: 640, outHeight: 480 }, 'no viewport: as is');
  t.match(resolveViewport({ vw: 128, vh: 128 }, 640, 480), { outWidth: 128, outHeight: 96 }, 'landscape fits the width');
  t.match(resolveViewport({ vw: 128, vh: 128 }, 300, 600), { outWidth: 64, outHeight: 128 }, 'portrait fits the height');
  t.match(resolveViewport({ vw: 1024, vh: 1024 }, 64, 32), { outWidth: 1024, outHeight: 512 }, 'scaled up to fit');
  t.match(resolveViewport({ vw: 100, vh: 100, sx: 10, sy: 20, sw: 50, sh: 25 }, 640, 480), { left: 10, top: 20, width: 50, height: 25, outWidth: 100, outHeight: 50 });
  t.match(resolveViewport({ vw: 100, vh: 100, sx: 600, sy: 0 }, 640, 480), { left: 600, width: 40, height: 480 }, 'without sw,sh: to the edges');
  t.match(resolveViewport({ vw: 100, vh: 100, sx: 50, sy: 50, sw: -50, sh: -50 }, 640, 480), { left: 0, top: 0, width: 50, height: 50, flipX: true, flipY: true });
  t.match(resolveViewport({ vw: 10, vh: 10, sx: 600, sy: 0, sw: 100, sh: 10 }, 640, 480), { left: 600, width: 40 }, 'clipped to the image');
  t.match(resolveViewport({ vw: 1, vh: 1 }, 1000, 10), { outWidth: 1, outHeight: 1 }, 'never below 1 pixel');
  refused(t, () => resolveViewport({ vw: 10, vh: 10, sx: 640, sy: 0 }, 640, 480), 'region starts outside');
  refused(t, () => resolveViewport({ vw: 10, vh: 10, sx: 0, sy: 0, sw: 0, sh: 10 }, 640, 480), 'empty region');
});

t.test('representative instance: the middle image in Instance Number order', async (t) => {
  const i = (uid: string, n?: number, rows?: number, series = 's1') => ({ sopInstanceUID: uid, instanceNumber: n, rows, seriesInstanceUID: series });
  t.equal(representativeInstance([]), undefined);
  t.equal(representativeInstance([i('a', 3), i('b', 1), i('c', 2)])?.sopInstanceUID, 'c');
  t.equal(representativeInstance([i('a', 1), i('b', 2), i('c', 3), i('d', 4)])?.sopInstanceUID, 'b', 'even count: the lower middle');
  t.equal(representativeInstance([i('sr', 1, 0), i('img', 2, 512)])?.sopInstanceUID, 'img', 'objects without pixels are skipped');
  t.equal(representativeInstance([i('sr', 1, 0)]), undefined);
  t.equal(representativeInstance([i('x'), i('a', 5)])?.sopInstanceUID, 'a', 'numbered before unnumbered');
  t.equal(representativeInstance([i('z', 1, 1, 's2'), i('y', 1, 1, 's1'), i('x', 2, 1, 's1'), i('w', 3, 1, 's1')])?.sopInstanceUID, 'x', 'study: middle of the first series');
});
