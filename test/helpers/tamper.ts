// An archive with tampered objects (issue 4 "Done when": a flipped byte, a truncated object, two objects
// swapped, and one deleted), for the verify service, the HTTP refusals and the CLI. The tampering acts on the
// blob files under <dataDir>/blobs/objects, as an attacker or a failing disk would, never through the stores.
import fs from 'node:fs';
import path from 'node:path';
import type { Test } from 'tap';
import { HEADER_LENGTH } from '../../src/storage/encrypted-blob-format.js';
import { testApp, type TestApp, type TestAppOptions } from './app.js';
import { multipartBody } from './multipart.js';
import { generatedSet } from './testdata.js';

export interface StoredFile {
  study: string;
  series: string;
  sop: string;
  bytes: Buffer;
  blobKey: string;
  /** The blob's file (fs-blob-store.ts: objects/ab/cd/<key>). */
  file: string;
}

export interface TamperedArchive extends TestApp {
  flipped: StoredFile;
  truncated: StoredFile;
  /** Their files were exchanged. */
  swapped: [StoredFile, StoredFile];
  deleted: StoredFile;
  /** The other instances of the tampered study, untouched. */
  intact: StoredFile[];
  /** A study nothing was done to. */
  otherStudy: StoredFile[];
  /** Offset of the flipped byte in the blob file: inside segment 0's ciphertext. */
  flippedAt: number;
}

const { manifest, files } = generatedSet('ct-2studies');

/** The generated CT studies' instances (each file ~130 KB: one 256 KiB segment once encrypted). */
function studyFiles(index: number): Omit<StoredFile, 'blobKey' | 'file'>[] {
  const study = manifest.studies[index]!;
  return study.series.flatMap((se) =>
    se.instances.map((i) => ({
      study: study.StudyInstanceUID,
      series: se.SeriesInstanceUID,
      sop: i.SOPInstanceUID,
      bytes: files.find((f) => f.rel.endsWith(i.file))!.bytes,
    })),
  );
}

export function blobFile(dataDir: string, blobKey: string): string {
  return path.join(dataDir, 'blobs', 'objects', blobKey.slice(0, 2), blobKey.slice(2, 4), blobKey);
}

export interface StoredArchive extends TestApp {
  /** The first generated study's instances, then the second's. */
  studies: [StoredFile[], StoredFile[]];
}

/** Both generated studies stored through STOW, each instance with its blob file. */
export async function storedArchive(t: Test, options: TestAppOptions = {}): Promise<StoredArchive> {
  const app = await testApp(t, {}, options);
  const located = async (list: Omit<StoredFile, 'blobKey' | 'file'>[]): Promise<StoredFile[]> => {
    const { contentType, body } = multipartBody(list.map((f) => f.bytes));
    const res = await app.app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType }, payload: body });
    if (res.statusCode !== 200) throw new Error(`STOW answered ${res.statusCode}`);
    return list.map((f) => {
      const blobKey = app.index.findInstance(f.sop)!.blobKey;
      return { ...f, blobKey, file: blobFile(app.dataDir, blobKey) };
    });
  };
  return { ...app, studies: [await located(studyFiles(0)), await located(studyFiles(1))] };
}

/** storedArchive(), then study 1's objects tampered with. */
export async function tamperedArchive(t: Test, options: TestAppOptions = {}): Promise<TamperedArchive> {
  const { studies, ...app } = await storedArchive(t, options);
  const [study1, otherStudy] = studies;

  const [flipped, truncated, deleted, ...rest] = study1 as [StoredFile, StoredFile, StoredFile, ...StoredFile[]];
  // Two of the same size: the swap must be caught by authentication, not by a size check.
  const a = rest.find((f) => rest.some((g) => g !== f && g.bytes.length === f.bytes.length))!;
  const b = rest.find((g) => g !== a && g.bytes.length === a.bytes.length)!;

  const flippedAt = HEADER_LENGTH + 1000;
  const cipher = fs.readFileSync(flipped.file);
  cipher[flippedAt]! ^= 0x01;
  fs.writeFileSync(flipped.file, cipher);
  fs.truncateSync(truncated.file, Math.floor(fs.statSync(truncated.file).size / 2));
  const parked = `${a.file}.parked`;
  fs.renameSync(a.file, parked);
  fs.renameSync(b.file, a.file);
  fs.renameSync(parked, b.file);
  fs.rmSync(deleted.file);

  return {
    ...app,
    flipped,
    truncated,
    swapped: [a, b],
    deleted,
    intact: rest.filter((f) => f !== a && f !== b),
    otherStudy,
    flippedAt,
  };
}
