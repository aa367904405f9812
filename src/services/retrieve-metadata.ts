// WADO-RS Retrieve Metadata as a use case (PS3.18 10.4.1, "Retrieve Metadata"): the DICOM JSON datasets of
// every instance a study, series or instance URL names. Knows nothing about HTTP; the route negotiates the
// representation and serializes.
//
// Each dataset is the stored one (InstanceRecord.dataset: bulk values were left out at STOW time) plus, for
// every value left out, an attribute `{vr, BulkDataURI}` at its place (PS3.18 F.2.7; nested values inside
// their sequence item). The URIs are absolute and name the bulk data resource
// `{instance URL}/bulk/{tag}[/{item}/{tag}...]` (8 uppercase hex tags, 0-based decimal item indexes), which
// http/routes/bulk-rs.ts serves.

import type { DicomJsonAttribute, DicomJsonDataset } from '../dicom/json-model.js';
import { firstNumber } from '../dicom/json-model.js';
import type { IndexStore, InstanceWithDataset, RetrieveScope, StoredInstanceRef } from '../index/index-store.js';
import type { ResourceUrls } from './resource-urls.js';
import type { Access } from '../policy/access.js';
import { missingScope, type PermittedStudyOptions, permittedStudy } from './permitted-study.js';

const PIXEL_DATA = '7FE00010';
const BITS_ALLOCATED = '00280100';


/** `TAG[/ITEM/TAG...]`: tags as 8 uppercase hex digits, item indexes 0-based decimal. */
export function bulkPath(path: readonly (string | number)[]): string {
  return path.map((p) => (typeof p === 'number' ? String(p) : p.toUpperCase())).join('/');
}

/**
 * PS3.5 8.2 / A.4: encapsulated Pixel Data is OB; native Pixel Data is OW when Bits Allocated > 8, OB when
 * it is 8 or less (the VR PS3.18 F.2.3 asks for when the stored one was implicit).
 */
export function pixelDataVr(dataset: DicomJsonDataset, encapsulated: boolean): 'OB' | 'OW' {
  if (encapsulated) return 'OB';
  const bits = firstNumber(dataset, BITS_ALLOCATED);
  return bits !== undefined && bits <= 8 ? 'OB' : 'OW';
}

/**
 * Puts `attribute` at `path` in `dataset` (a tag, or tag/item/tag/... into sequence items). A path through an
 * item the dataset does not hold is skipped: the stored dataset and layout come from one parse, so that only
 * happens with hand-made records.
 */
function setAtPath(dataset: DicomJsonDataset, path: readonly (string | number)[], attribute: DicomJsonAttribute): void {
  let current: DicomJsonDataset = dataset;
  for (let i = 0; i + 1 < path.length; i += 2) {
    const item = current[String(path[i]).toUpperCase()]?.Value?.[path[i + 1] as number];
    if (item === undefined || item === null || typeof item !== 'object' || 'Alphabetic' in item || 'Ideographic' in item || 'Phonetic' in item) return;
    current = item as DicomJsonDataset;
  }
  current[String(path[path.length - 1]).toUpperCase()] = attribute;
}

/**
 * One instance's metadata: its dataset with BulkDataURIs for Pixel Data and every other value left out.
 * Changes and returns `dataset` (the index hands out copies).
 */
export function instanceMetadata(ref: StoredInstanceRef, dataset: DicomJsonDataset, urls: ResourceUrls): DicomJsonDataset {
  const layout = ref.layout;
  if (layout === undefined) return dataset;
  const base = `${urls.instance(ref.studyInstanceUID, ref.seriesInstanceUID, ref.sopInstanceUID)}/bulk/`;
  if (layout.pixelData) {
    dataset[PIXEL_DATA] = { vr: pixelDataVr(dataset, layout.pixelData.encapsulated), BulkDataURI: base + PIXEL_DATA };
  }
  for (const bulk of layout.bulk ?? []) {
    if (bulk.path.length === 0) continue;
    setAtPath(dataset, bulk.path, { vr: bulk.vr, BulkDataURI: base + bulkPath(bulk.path) });
  }
  return dataset;
}

/**
 * The metadata of every instance in a retrieve scope, in retrieve order; 404 when there is none (PS3.18 10.4.1.3)
 * or when the principal may not read the study, worded the same (permitted-study.ts).
 */
export function retrieveMetadata(
  index: IndexStore,
  access: Access,
  scope: RetrieveScope,
  urls: ResourceUrls,
  options: PermittedStudyOptions = {},
): DicomJsonDataset[] {
  permittedStudy(index, access, scope, 'view', options);
  const found: InstanceWithDataset[] = index.listInstanceDatasets(scope);
  // The message names the level only: UIDs stay out of bodies and logs.
  if (found.length === 0) throw missingScope(scope, options);
  return found.map(({ ref, dataset }) => instanceMetadata(ref, dataset, urls));
}
