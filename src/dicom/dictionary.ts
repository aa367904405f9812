// Keyword <-> tag <-> VR, from the PS3.6 data dictionary that dcmjs bundles (no hand-written copy to drift).
// QIDO uses keywordToTag (attribute names in query parameters, PS3.18 8.3.4.1), the XML writer tagToKeyword,
// and the Part 10 reader dictionaryVr for Implicit VR streams, where the VR is not in the bytes (PS3.5 7.1.3).

import dcmjs from 'dcmjs';
import { concreteVr } from './vr.js';

// dcmjs reads LOG_LEVEL at import and logs parse warnings to the console through two loggers; it must
// never write DICOM-derived text to our stdout (DESIGN.md "Known pitfalls", SECURITY.md section 8).
dcmjs.log.setLevel('silent');
dcmjs.log.getLogger('validation.dcmjs').setLevel('silent');
dcmjs.log.getLogger('AsyncDicomReader').setLevel('silent');

const { dictionary, nameMap } = dcmjs.data.DicomMetaDictionary;
const RETIRED = 'RETIRED_';

function hex8(tag: number): string {
  return (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

/** "(0010,0010)" -> "00100010" */
function fromPunctuated(tag: string): string {
  return (tag.slice(1, 5) + tag.slice(6, 10)).toUpperCase();
}

const isPrivateGroup = (group: number) => (group & 1) === 1;

/** Private Creator elements (gggg,0010-00FF) in odd groups are LO (PS3.5 7.8.1). */
function isPrivateCreator(tag: number): boolean {
  const element = tag & 0xffff;
  return isPrivateGroup(tag >>> 16) && element >= 0x0010 && element <= 0x00ff;
}

const vrCache = new Map<number, string | null>();

/**
 * The dictionary VR of a tag, as PS3.6 states it (lower-case codes for context-dependent VRs: see vr.ts),
 * or undefined for private and unknown tags. Group lengths (gggg,0000) are UL (PS3.5 7.2).
 */
export function dictionaryVr(tag: number): string | undefined {
  let vr = vrCache.get(tag);
  if (vr === undefined) {
    if ((tag & 0xffff) === 0) vr = 'UL';
    else if (isPrivateCreator(tag)) vr = 'LO';
    else if (isPrivateGroup(tag >>> 16)) vr = null;
    else vr = dictionary[hex8(tag)]?.vr ?? null;
    vrCache.set(tag, vr);
  }
  return vr ?? undefined;
}

/** The VR a server should assume for a tag (context-dependent VRs resolved as PS3.5 A.1 does), or undefined. */
export function vrOf(tag: string): string | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(tag)) return undefined;
  const vr = dictionaryVr(Number.parseInt(tag, 16));
  return vr === undefined ? undefined : concreteVr(vr);
}

/** PS3.6 keyword of a standard tag ("00100010" -> "PatientName"), retired ones without their marker. */
export function tagToKeyword(tag: string): string | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(tag) || isPrivateGroup(Number.parseInt(tag.slice(0, 4), 16))) return undefined;
  const name = dictionary[tag.toUpperCase()]?.name;
  if (name === undefined) return undefined;
  return name.startsWith(RETIRED) ? name.slice(RETIRED.length) : name;
}

/** Tag of a PS3.6 keyword ("PatientName" -> "00100010"); keywords are case-sensitive. */
export function keywordToTag(keyword: string): string | undefined {
  if (!/^[A-Za-z][A-Za-z0-9]*$/.test(keyword)) return undefined;
  const entry = Object.hasOwn(nameMap, keyword) ? nameMap[keyword] : Object.hasOwn(nameMap, RETIRED + keyword) ? nameMap[RETIRED + keyword] : undefined;
  return entry ? fromPunctuated(entry.tag) : undefined;
}
