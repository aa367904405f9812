// The OHIF viewer (npm @ohif/app production build) in Debian's headless Chromium opens studies from this
// archive and shows the images (INTEROP.md, "OHIF viewer 3.x in headless Chromium"). Nothing is faked: the
// archive is `dicomvault serve` as a process, reached over mutual TLS through the same-origin gateway a
// hospital would put in front of it (gateway.ts); OHIF does its own QIDO, metadata and frame requests; the
// check is on the pixels Chromium rendered in the viewport canvas.
//
// Run with `npm run test:viewer` (scripts/viewer-deps.sh installs Chromium and the OHIF build first).
// On failure the screenshot, the browser console and the failed requests are kept in a temporary folder whose
// path is printed. VIEWER_KEEP_ARTIFACTS=1 keeps them after a pass too; VIEWER_LOG_LEVEL=debug logs every
// request the gateway forwards (method, path, status).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import t, { type Test } from 'tap';
import { tempDir } from '../helpers/temp-dir.js';
import { testFile } from '../helpers/testdata.js';
import { startServer, type RunningServer } from '../e2e/cli-process.js';
import { startGateway, type Gateway } from './gateway.js';
import { CHROMIUM_ARGS, generateCtStudies, saveSeen, skipTour, stow, viewerDeps, waitForImage, watch, type PixelStats, type Seen } from './viewer-kit.js';

const log = pino({ level: process.env.VIEWER_LOG_LEVEL ?? 'info' }, pino.destination(2));

/** Every BulkDataURI in a DICOM JSON metadata answer, nested items included. */
function bulkDataUris(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(bulkDataUris);
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => (k === 'BulkDataURI' && typeof v === 'string' ? [v] : bulkDataUris(v)));
}

const deps = viewerDeps();

t.test('OHIF opens a CT study and a multi-frame study from the archive and shows the images', async (t) => {
  const work = tempDir(t, 'dicomvault-viewer-');
  const artifacts = fs.mkdtempSync(path.join(os.tmpdir(), 'dicomvault-viewer-artifacts-'));
  const archiveDir = path.join(work, 'archive');
  fs.mkdirSync(archiveDir);

  let archive: RunningServer | undefined;
  let gateway: Gateway | undefined;
  let browser: Browser | undefined;
  t.teardown(async () => {
    await browser?.close();
    await gateway?.close();
    await archive?.stop();
    if (t.passing() && !process.env.VIEWER_KEEP_ARTIFACTS) fs.rmSync(artifacts, { recursive: true, force: true });
    else {
      if (archive) {
        const { stdout, stderr } = archive.output();
        fs.writeFileSync(path.join(artifacts, 'archive-output.txt'), stdout + stderr);
      }
      console.error(`# viewer test artifacts (screenshots, console, failed requests): ${artifacts}`);
    }
  });

  archive = await startServer(t, archiveDir, { DICOMVAULT_SERVER_TRUSTED_PROXIES: '127.0.0.1,::1' });
  gateway = await startGateway({ ohifDist: deps.ohifDist, archive: archive.base, tls: archive.tls, log });

  // A synthetic axial CT series (shared/tools/gen-ct.mjs): 30 slices of 256 x 256, one study.
  const ct = generateCtStudies(path.join(work, 'ct'), { studies: 1, count: 30, seed: 41 })[0]!;
  t.equal(await stow(archive, ct.files), 200, `STOW: ${ct.files.length} CT slices stored`);
  // Ultrasound, 10 frames of 430 x 600, palette colour, RLE Lossless (npm dicomweb-client's test data).
  const multiframe = { studyUid: '999.999.3859744', file: testFile('dicomweb-client/US-PAL-8-10x-echo.dcm') };
  t.equal(await stow(archive, [multiframe.file]), 200, 'STOW: the 10-frame ultrasound instance stored');

  browser = await chromium.launch({
    executablePath: deps.chromium,
    args: CHROMIUM_ARGS,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });

  async function open(t: Test, name: string, studyUid: string): Promise<{ page: Page; seen: Seen; first: PixelStats | null }> {
    const page = await context.newPage();
    const seen = watch(page);
    const save = async (suffix: string) => {
      await page.screenshot({ path: path.join(artifacts, `${name}-${suffix}.png`) }).catch(() => undefined);
      saveSeen(artifacts, name, seen);
    };
    t.teardown(async () => {
      await save('end');
      seen.closing = true;
      await page.close();
    });
    await page.goto(`${gateway!.origin}/viewer?StudyInstanceUIDs=${encodeURIComponent(studyUid)}`);
    await page.locator('canvas.cornerstone-canvas').first().waitFor({ state: 'attached', timeout: 45_000 });
    await skipTour(page);
    const first = await waitForImage(page, 45_000);
    await skipTour(page);
    await save('first-image');
    return { page, seen, first };
  }

  function assertImage(t: Test, stats: PixelStats | null, what: string) {
    t.ok(stats, `${what}: the viewport has a canvas with pixels`);
    if (!stats) return;
    t.ok(stats.lit > 0.05, `${what}: more than 5% of the viewport is lit (${(stats.lit * 100).toFixed(1)}%)`);
    t.ok(stats.levels >= 32, `${what}: at least 32 distinct levels (${stats.levels})`);
  }

  function assertDicomweb(t: Test, seen: Seen, studyUid: string) {
    const errors = seen.dicomweb.filter((r) => r.status >= 400);
    t.same(errors, [], 'no DICOMweb request of OHIF got a 4xx/5xx');
    const paths = seen.dicomweb.map((r) => r.url);
    t.ok(paths.some((u) => u.startsWith(`/dicomweb/studies?`) || u.startsWith(`/dicomweb/studies/${studyUid}/series`)), 'OHIF searched with QIDO-RS');
    t.ok(paths.some((u) => /\/metadata$/.test(u.split('?')[0]!)), 'OHIF read series metadata');
    t.ok(paths.some((u) => /\/frames\/\d+/.test(u)), 'OHIF fetched frames');
  }

  // The archive trusts the gateway's Forwarded header (server.trustedProxies), so the URLs it writes into
  // metadata lead the browser back through the gateway, not to the mutual-TLS address it cannot use.
  await t.test('BulkDataURIs in metadata point at the gateway', async (t) => {
    for (const uid of [ct.studyUid, multiframe.studyUid]) {
      const res = await fetch(`${gateway!.origin}/dicomweb/studies/${uid}/metadata`, { headers: { accept: 'application/dicom+json' } });
      t.equal(res.status, 200, `study ${uid}: metadata`);
      const uris = bulkDataUris(await res.json());
      t.ok(uris.length > 0, `study ${uid}: ${uris.length} BulkDataURIs`);
      t.same(uris.filter((u) => !u.startsWith(`${gateway!.origin}/dicomweb/studies/${uid}/`)), [], 'each on the gateway origin');
    }
  });

  await t.test('CT study: 30 slices', async (t) => {
    const { seen, first } = await open(t, 'ct', ct.studyUid);
    assertImage(t, first, 'CT first image');
    assertDicomweb(t, seen, ct.studyUid);
  });

  await t.test('multi-frame study: 10-frame ultrasound, and a step to the next frame', async (t) => {
    const { page, seen, first } = await open(t, 'multiframe', multiframe.studyUid);
    assertImage(t, first, 'frame 1');
    if (first && first.lit > 0.05) {
      // OHIF's hotkey for the next image in the viewport is the down arrow; the viewport needs the focus.
      await page.locator('canvas.cornerstone-canvas').first().click();
      await page.keyboard.press('ArrowDown');
      const next = await waitForImage(page, 20_000, first.hash);
      assertImage(t, next, 'after a step');
      t.not(next?.hash, first.hash, 'the viewport now shows another frame');
      await page.screenshot({ path: path.join(artifacts, 'multiframe-next-frame.png') });
    }
    assertDicomweb(t, seen, multiframe.studyUid);
    t.ok(seen.dicomweb.some((r) => /\/frames\/([2-9]|10)\b/.test(r.url) && r.status < 300), 'a frame other than the first was fetched');
  });
});
