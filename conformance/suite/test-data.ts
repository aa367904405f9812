// The suite's own data: a few files of the shared corpus (../shared/testdata, generated/ sets with a
// manifest), given fresh UIDs and Patient IDs for every run so that checks are exact on a server that
// already holds other studies, or this suite's earlier runs. Nothing is copied into the repository.
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// The type only (erased at run time): test/helpers/testdata.ts reads the same manifest.json, but importing its
// code would throw where the shared test data is absent, and the suite imports no test code.
import type { Manifest } from '../../test/helpers/testdata.js';

export interface Instance {
  study: string;
  series: string;
  sop: string;
  sopClass: string;
  instanceNumber: number;
  rows: number;
  columns: number;
  frames: number;
  /** The Part 10 bytes as stored by this run. */
  bytes: Buffer;
}

export interface Series {
  uid: string;
  number: number;
  modality: string;
  instances: Instance[];
}

export interface Study {
  uid: string;
  patientId: string;
  patientName: string;
  studyDate: string;
  accession: string;
  description: string;
  series: Series[];
}

export interface RunData {
  /** [0] two series, [1] one series (ct-2studies); [2] one multi-frame instance (ct-multiframe). */
  studies: [Study, Study, Study];
  /** An instance of studies[1] that the setup does not store: the partial-success STOW check sends it. */
  spare: Instance;
  /** The 3-digit run tag every Patient ID of this run starts with, after "C". */
  runTag: string;
}


/** ../shared/testdata beside the clone (as test/helpers/testdata.ts finds it), or TESTDATA_DIR. */
export function defaultTestdataDir(): string {
  const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  return process.env.TESTDATA_DIR ?? path.resolve(repoRoot, '../shared/testdata');
}

const digits = (n: number): string => Array.from({ length: n }, (_, i) => String(i === 0 ? randomInt(1, 10) : randomInt(0, 10))).join('');

/** A UID no server holds: for 404 checks. */
export const randomUid = (): string => `2.25.${digits(38)}`;

/** A new 2.25 UID as long as `old`, so that replacing it in place keeps every length field true. */
const sameLengthUid = (old: string): string => `2.25.${digits(old.length - 5)}`;

/**
 * Replaces every occurrence of each key by its value (same length) where it stands alone (not inside a
 * longer number or UID): UIDs and IDs of these files are ASCII values of top-level elements and of the meta header.
 */
function replaceValues(bytes: Buffer, map: Map<string, string>): Buffer {
  const out = Buffer.from(bytes);
  const isUidChar = (b: number | undefined) => b !== undefined && ((b >= 0x30 && b <= 0x39) || b === 0x2e);
  for (const [from, to] of map) {
    if (from.length !== to.length) throw new Error(`replacement for ${from} changes its length`);
    const needle = Buffer.from(from, 'latin1');
    for (let at = out.indexOf(needle); at !== -1; at = out.indexOf(needle, at + needle.length)) {
      if (isUidChar(out[at - 1]) || isUidChar(out[at + needle.length])) continue;
      out.write(to, at, 'latin1');
    }
  }
  return out;
}

/** The value of a top-level element of an Explicit VR Little Endian file with a 2-byte length (UI, US, IS). */
export function shortElement(bytes: Buffer, group: number, element: number, vr: string): Buffer | undefined {
  const tag = Buffer.alloc(6);
  tag.writeUInt16LE(group, 0);
  tag.writeUInt16LE(element, 2);
  tag.write(vr, 4, 'latin1');
  const at = bytes.indexOf(tag, 132);
  if (at === -1) return undefined;
  return bytes.subarray(at + 8, at + 8 + bytes.readUInt16LE(at + 6));
}

const uiValue = (bytes: Buffer, g: number, e: number) => shortElement(bytes, g, e, 'UI')?.toString('latin1').replace(/\0+$/, '') ?? '';
const usValue = (bytes: Buffer, g: number, e: number) => shortElement(bytes, g, e, 'US')?.readUInt16LE(0) ?? 0;
const isValue = (bytes: Buffer, g: number, e: number, fallback: number) => Number(shortElement(bytes, g, e, 'IS')?.toString('latin1').trim() || fallback);

/** Native (uncompressed) Pixel Data of an Explicit VR LE file: the OW value of (7FE0,0010). */
export function nativePixelData(bytes: Buffer): Buffer {
  const tag = Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57, 0x00, 0x00]);
  const at = bytes.lastIndexOf(tag);
  if (at === -1) throw new Error('no native OW Pixel Data');
  return bytes.subarray(at + 12, at + 12 + bytes.readUInt32LE(at + 8));
}

function loadSet(dir: string, name: string, map: Map<string, string>, runTag: string, pick: (series: number, instance: number) => boolean): Study[] {
  const root = path.join(dir, 'generated', name);
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'manifest.json'), 'utf8')) as Manifest;
  const renamed = (old: string, make: (o: string) => string) => {
    if (!map.has(old)) map.set(old, make(old));
    return map.get(old)!;
  };
  return manifest.studies.map((s) => {
    const study: Study = {
      uid: renamed(s.StudyInstanceUID, sameLengthUid),
      // "SYN001-00001" -> "C<run>01-00001": 12 characters, distinct per file set and patient.
      patientId: renamed(s.PatientID, (o) => `C${runTag}${o.slice(4)}`),
      patientName: s.PatientName,
      studyDate: s.StudyDate,
      accession: s.AccessionNumber,
      description: s.StudyDescription,
      series: [],
    };
    s.series.forEach((x, xi) => {
      const series: Series = { uid: renamed(x.SeriesInstanceUID, sameLengthUid), number: x.SeriesNumber, modality: x.Modality, instances: [] };
      x.instances.forEach((i, ii) => {
        if (!pick(xi, ii)) return;
        const sop = renamed(i.SOPInstanceUID, sameLengthUid);
        series.instances.push({ study: study.uid, series: series.uid, sop, sopClass: '', instanceNumber: 0, rows: 0, columns: 0, frames: 1, bytes: fs.readFileSync(path.join(root, i.file)) });
      });
      if (series.instances.length > 0) study.series.push(series);
    });
    return study;
  });
}

/** Reads the files, renames them for this run and fills in what the checks compare against. */
export function loadRunData(dir = defaultTestdataDir()): RunData {
  if (!fs.existsSync(path.join(dir, 'generated'))) throw new Error(`test data not found at ${dir} (use --testdata DIR or TESTDATA_DIR)`);
  const map = new Map<string, string>();
  const runTag = digits(3);
  // ct-2studies: study 1 series 1 (3 instances) + series 2 (2); study 2 series 1 (2 instances + 1 spare).
  const [s1, s2] = loadSet(dir, 'ct-2studies', map, runTag, (x, i) => (x === 0 ? i < 3 : false) || (x === 1 ? i < 2 : false));
  const [mf] = loadSet(dir, 'ct-multiframe', map, runTag, () => true);
  if (!s1 || !s2 || !mf) throw new Error('unexpected manifests in generated/');
  s2.series = s2.series.slice(0, 1);
  const spare = s2.series[0]!.instances.pop()!;
  for (const i of [...[s1, s2, mf].flatMap((s) => s.series.flatMap((x) => x.instances)), spare]) {
    i.bytes = replaceValues(i.bytes, map);
    i.sopClass = uiValue(i.bytes, 0x0008, 0x0016);
    i.instanceNumber = isValue(i.bytes, 0x0020, 0x0013, 0);
    i.rows = usValue(i.bytes, 0x0028, 0x0010);
    i.columns = usValue(i.bytes, 0x0028, 0x0011);
    i.frames = isValue(i.bytes, 0x0028, 0x0008, 1);
    if (uiValue(i.bytes, 0x0008, 0x0018) !== i.sop) throw new Error(`renaming failed for ${i.sop}`);
  }
  return { studies: [s1, s2, mf], spare, runTag };
}

export const allInstances = (study: Study): Instance[] => study.series.flatMap((x) => x.instances);
