// The shared DICOM corpus (../shared/testdata, see its SOURCES.md). CI lays shared/ beside the clone.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const TESTDATA = process.env.TESTDATA_DIR ?? path.resolve(repoRoot, '../shared/testdata');

if (!fs.existsSync(path.join(TESTDATA, 'INDEX.tsv'))) {
  throw new Error(`shared test data not found at ${TESTDATA} (set TESTDATA_DIR)`);
}

export const testFile = (rel: string): Buffer => fs.readFileSync(path.join(TESTDATA, rel));

export interface IndexRow {
  path: string;
  parse: string;
  transferSyntax: string;
  /** Rows (0028,0010); 0 without one (not an image). */
  rows: number;
  studyUid: string;
  seriesUid: string;
  sopUid: string;
  patientName: string;
}

/** INDEX.tsv: one row per file with its UIDs as pydicom read them. */
export function indexRows(): IndexRow[] {
  const [head, ...lines] = fs.readFileSync(path.join(TESTDATA, 'INDEX.tsv'), 'utf8').trim().split('\n');
  const cols = head!.split('\t');
  const at = (name: string) => cols.indexOf(name);
  return lines.map((line) => {
    const f = line.split('\t');
    return {
      path: f[at('path')]!,
      parse: f[at('parse')]!,
      transferSyntax: f[at('transfer_syntax')]!,
      rows: Number(f[at('rows')]),
      studyUid: f[at('study_uid')]!,
      seriesUid: f[at('series_uid')]!,
      sopUid: f[at('sop_uid')]!,
      patientName: f[at('patient_name')]!,
    };
  });
}

/**
 * The image files: the rows that parse, have Rows > 0 and are outside broken/ (the set the transcoding and rendering
 * references cover; scripts/lib/references.sh image_paths applies the same rule).
 */
export function imagePaths(): string[] {
  return indexRows()
    .filter((r) => r.parse === 'ok' && r.rows > 0 && !r.path.startsWith('broken/'))
    .map((r) => r.path);
}

export interface Manifest {
  patients: { PatientID: string; PatientName: string; PatientBirthDate: string; PatientSex: string }[];
  studies: {
    StudyInstanceUID: string;
    PatientID: string;
    PatientName: string;
    StudyDate: string;
    AccessionNumber: string;
    StudyDescription: string;
    ModalitiesInStudy: string[];
    series: { SeriesInstanceUID: string; SeriesNumber: number; Modality: string; instances: { SOPInstanceUID: string; InstanceNumber: number; file: string }[] }[];
  }[];
}

export function generatedSet(name: string): { manifest: Manifest; files: { rel: string; bytes: Buffer }[] } {
  const dir = path.join('generated', name);
  const manifest = JSON.parse(fs.readFileSync(path.join(TESTDATA, dir, 'manifest.json'), 'utf8')) as Manifest;
  const files = manifest.studies.flatMap((s) => s.series.flatMap((x) => x.instances.map((i) => path.join(dir, i.file))));
  return { manifest, files: files.map((rel) => ({ rel, bytes: testFile(rel) })) };
}
