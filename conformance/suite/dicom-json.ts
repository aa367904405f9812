// Reading the DICOM JSON Model (PS3.18 Annex F) in answers.
import { expect, expectStatus, expectType } from './assert.js';
import type { HttpResponse } from './http.js';

export interface Attribute {
  vr?: string;
  Value?: unknown[];
  BulkDataURI?: string;
  InlineBinary?: string;
}
export type Dataset = Record<string, Attribute>;

/** The first value of an attribute (a PN is an object; see personName). */
export const first = (ds: Dataset | undefined, tag: string): unknown => ds?.[tag]?.Value?.[0];

export const firstString = (ds: Dataset | undefined, tag: string): string | undefined => {
  const v = first(ds, tag);
  return v === undefined || v === null ? undefined : String(v);
};

/** A 200 application/dicom+json answer holding an array of datasets. */
export function datasetArray(res: HttpResponse, what: string): Dataset[] {
  expectStatus(res, 200, what);
  expectType(res, 'application/dicom+json', what);
  const body: unknown = JSON.parse(res.body.toString('utf8'));
  expect(Array.isArray(body), `${what}: expected a JSON array of datasets`);
  return body as Dataset[];
}

/** A single-dataset answer (the Store Instances Response): an object, or an array of exactly one (seen in the wild). */
export function singleDataset(res: HttpResponse, what: string): Dataset {
  expectType(res, 'application/dicom+json', what);
  const body: unknown = JSON.parse(res.body.toString('utf8'));
  const ds = Array.isArray(body) && body.length === 1 ? body[0] : body;
  expect(ds !== null && typeof ds === 'object' && !Array.isArray(ds), `${what}: expected one dataset`);
  return ds as Dataset;
}

/** Items of a sequence attribute ([] when absent or empty). */
export const items = (ds: Dataset | undefined, tag: string): Dataset[] => (ds?.[tag]?.Value ?? []) as Dataset[];

/** The values of one attribute across datasets (the first value of each). */
export const column = (list: Dataset[], tag: string): string[] => list.map((ds) => firstString(ds, tag) ?? '');
