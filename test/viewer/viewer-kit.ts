// What the viewer tests share: the viewer dependencies, test data, STOW over mutual TLS, and reading what
// OHIF shows in headless Chromium (the viewport canvas's pixels, the DICOMweb requests the page made).
// ohif.viewer.ts and ohif-access.viewer.ts use it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { request } from '../helpers/https-client.js';
import { multipartBody } from '../helpers/multipart.js';
import { TESTDATA } from '../helpers/testdata.js';
import type { RunningServer } from '../e2e/cli-process.js';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Debian's chromium, headless, as INTEROP.md says. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--enable-unsafe-swiftshader'];

/** scripts/viewer-deps.sh is idempotent and prints where Chromium and the OHIF build are. */
export function viewerDeps(): { ohifDist: string; chromium: string } {
  const out = execFileSync('bash', [path.join(root, 'scripts/viewer-deps.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const value = (key: string) => {
    const v = new RegExp(`^${key}=(.+)$`, 'm').exec(out)?.[1];
    if (!v) throw new Error(`scripts/viewer-deps.sh printed no ${key}: ${out}`);
    return v;
  };
  return { ohifDist: value('OHIF_DIST'), chromium: value('CHROMIUM') };
}

export interface GeneratedStudy {
  studyUid: string;
  patientId: string;
  /** The family name (first component of PatientName), which OHIF's study list shows. */
  familyName: string;
  files: Buffer[];
}

/** Synthetic axial CT studies (shared/tools/gen-ct.mjs), one series each, 256 x 256, `count` slices in all. */
export function generateCtStudies(dir: string, o: { studies: number; count: number; seed: number }): GeneratedStudy[] {
  const genCt = path.resolve(TESTDATA, '../tools/gen-ct.mjs');
  if (!fs.existsSync(genCt)) throw new Error(`${genCt} not found: the shared tools sit beside the test data (TESTDATA_DIR/../tools)`);
  execFileSync(
    process.execPath,
    [genCt, '--out', dir, '--count', String(o.count), '--studies', String(o.studies), '--series', '1', '--rows', '256', '--cols', '256', '--seed', String(o.seed), '--names', 'ascii'],
    { stdio: 'ignore' },
  );
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as {
    studies: { StudyInstanceUID: string; PatientID: string; PatientName: string; series: { instances: { file: string }[] }[] }[];
  };
  return manifest.studies.map((study) => ({
    studyUid: study.StudyInstanceUID,
    patientId: study.PatientID,
    familyName: study.PatientName.split('^')[0]!,
    files: study.series.flatMap((s) => s.instances.map((i) => fs.readFileSync(path.join(dir, i.file)))),
  }));
}

/** VRs whose explicit-VR element header has 2 reserved bytes and a 4-byte length (PS3.5 7.1.2). */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

/**
 * The Part 10 file with InstitutionName (0008,0080) set to `name` (gen-ct.mjs picks one at random). Walks the
 * explicit VR little endian elements from the preamble to (0008,0080) and replaces its value; the element is
 * at the top level, so no enclosing length changes.
 */
export function withInstitution(file: Buffer, name: string): Buffer {
  if (file.toString('latin1', 128, 132) !== 'DICM') throw new Error('not a Part 10 file');
  let at = 132;
  while (at + 8 <= file.length) {
    const group = file.readUInt16LE(at);
    const element = file.readUInt16LE(at + 2);
    const vr = file.toString('latin1', at + 4, at + 6);
    const long = LONG_VRS.has(vr);
    const length = long ? file.readUInt32LE(at + 8) : file.readUInt16LE(at + 6);
    const header = long ? 12 : 8;
    if (length === 0xffffffff) throw new Error(`undefined length before (0008,0080) at ${at}`);
    const tag = (group << 16) | element;
    if (tag === 0x00080080) {
      if (vr !== 'LO') throw new Error(`InstitutionName has VR ${vr}`);
      const value = Buffer.from(name.length % 2 === 0 ? name : `${name} `, 'latin1');
      const head = Buffer.from(file.subarray(at, at + 8));
      head.writeUInt16LE(value.length, 6);
      return Buffer.concat([file.subarray(0, at), head, value, file.subarray(at + header + length)]);
    }
    if (tag > 0x00080080 && group !== 0x0002) break;
    at += header + length;
  }
  throw new Error('no InstitutionName (0008,0080) in the file');
}

export async function stow(archive: RunningServer, files: Buffer[]): Promise<number> {
  const { contentType, body } = multipartBody(files);
  const res = await request(`${archive.base}/studies`, archive.tls, { method: 'POST', headers: { 'content-type': contentType, accept: 'application/dicom+json' }, body });
  return res.status;
}

export interface Seen {
  /** Set before the page closes: requests the close aborts are no failures. */
  closing: boolean;
  console: string[];
  /** Every response to a DICOMweb request. */
  dicomweb: { status: number; method: string; url: string }[];
  failed: string[];
}

export function watch(page: Page): Seen {
  const seen: Seen = { closing: false, console: [], dicomweb: [], failed: [] };
  page.on('console', (m) => seen.console.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => seen.console.push(`[pageerror] ${e.message}`));
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/dicomweb/')) seen.dicomweb.push({ status: r.status(), method: r.request().method(), url: u.pathname + u.search });
    if (r.status() >= 400) seen.failed.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  page.on('requestfailed', (r) => seen.closing || seen.failed.push(`failed (${r.failure()?.errorText}) ${r.method()} ${r.url()}`));
  return seen;
}

/** Writes what a page saw into the artifacts folder (name-*.txt). */
export function saveSeen(artifacts: string, name: string, seen: Seen): void {
  fs.writeFileSync(path.join(artifacts, `${name}-console.txt`), seen.console.join('\n') + '\n');
  fs.writeFileSync(path.join(artifacts, `${name}-failed-requests.txt`), seen.failed.join('\n') + '\n');
  fs.writeFileSync(path.join(artifacts, `${name}-dicomweb.txt`), seen.dicomweb.map((r) => `${r.status} ${r.method} ${r.url}`).join('\n') + '\n');
}

export interface PixelStats {
  width: number;
  height: number;
  /** Share of pixels brighter than near-black. */
  lit: number;
  /** Distinct colours (grey levels for a greyscale image). */
  levels: number;
  /** A cheap fingerprint of the pixels, to tell two frames apart. */
  hash: number;
}

// The few DOM types the in-page functions below use (tsconfig has no DOM lib: the project is server code).
interface PageCanvas {
  width: number;
  height: number;
  getContext(kind: '2d', o: { willReadFrequently: boolean }): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray; width: number; height: number } } | null;
}
declare const document: { querySelector(selector: string): PageCanvas | null };

/** Reads the viewport canvas Cornerstone draws into (a 2D canvas the WebGL output is copied to). */
export async function viewportPixels(page: Page): Promise<PixelStats | null> {
  return page.evaluate(() => {
    const canvas = document.querySelector('canvas.cornerstone-canvas');
    if (!canvas || canvas.width === 0 || canvas.height === 0) return null;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) return null;
    const { data, width, height } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let lit = 0;
    let hash = 0;
    const colours = new Set<number>();
    for (let i = 0; i < data.length; i += 4) {
      const r = data[i]!;
      const g = data[i + 1]!;
      const b = data[i + 2]!;
      if (Math.max(r, g, b) > 24) lit++;
      colours.add((r << 16) | (g << 8) | b);
      hash = (Math.imul(hash, 31) + r + 3 * g + 7 * b) | 0;
    }
    return { width, height, lit: lit / (width * height), levels: colours.size, hash };
  });
}

/** Is this an image (not black, not flat)? The viewer tests' one criterion. */
export function isImage(s: PixelStats | null): boolean {
  return s !== null && s.lit > 0.05 && s.levels >= 32;
}

/** Polls until the viewport shows an image, or gives up and returns the last reading. */
export async function waitForImage(page: Page, timeoutMs: number, differentFrom?: number): Promise<PixelStats | null> {
  const until = Date.now() + timeoutMs;
  let last: PixelStats | null = null;
  while (Date.now() < until) {
    last = await viewportPixels(page);
    if (isImage(last) && (differentFrom === undefined || last!.hash !== differentFrom)) return last;
    await page.waitForTimeout(500);
  }
  return last;
}

export async function skipTour(page: Page): Promise<void> {
  const skip = page.getByRole('button', { name: 'Skip all' });
  if (await skip.isVisible().catch(() => false)) await skip.click();
}
