// DICOM JSON Model (PS3.18 Annex F) -> Native DICOM Model XML (PS3.19 A.1), the application/dicom+xml body of
// WADO-RS metadata and QIDO-RS responses. Values come from uploaded objects, so every string is escaped:
// a PatientName holding "<", "&", "]]>", CR/LF or NUL must not break or inject into the document
// (SECURITY.md section 8, case 34).

import { tagToKeyword } from './dictionary.js';
import type { DicomJsonAttribute, DicomJsonDataset, DicomJsonValue, PersonName } from './json-model.js';

const NAMESPACE = 'http://dicom.nema.org/PS3.19/models/NativeDICOM';

// Characters XML 1.0 cannot carry at all, not even as references (XML 1.0 section 2.2 "Char"): C0 controls
// other than TAB/LF/CR, lone surrogates, U+FFFE/U+FFFF. They become U+FFFD so the loss is visible.
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Character data: markup characters escaped; CR as a reference, or parsers would turn it into LF. */
export function escapeText(s: string): string {
  return s
    .replace(NOT_XML_CHAR, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\r/g, '&#13;');
}

/** Attribute values: also quotes, and whitespace as references (attribute-value normalisation, XML 3.3.3). */
export function escapeAttribute(s: string): string {
  return escapeText(s).replace(/"/g, '&quot;').replace(/'/g, '&apos;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;');
}

const PN_COMPONENTS = ['FamilyName', 'GivenName', 'MiddleName', 'NamePrefix', 'NameSuffix'] as const;

/** One PN component group ("Family^Given^Middle^Prefix^Suffix") as PS3.19 elements; empty components omitted. */
function personNameGroup(group: 'Alphabetic' | 'Ideographic' | 'Phonetic', value: string | undefined): string {
  if (!value) return '';
  const parts = value.split('^');
  let out = '';
  PN_COMPONENTS.forEach((name, i) => {
    const part = i < PN_COMPONENTS.length - 1 ? parts[i] : parts.slice(i).join('^');
    if (part) out += `<${name}>${escapeText(part)}</${name}>`;
  });
  return out === '' ? '' : `<${group}>${out}</${group}>`;
}

function personName(pn: PersonName, number: number): string {
  const groups =
    personNameGroup('Alphabetic', pn.Alphabetic) +
    personNameGroup('Ideographic', pn.Ideographic) +
    personNameGroup('Phonetic', pn.Phonetic);
  return `<PersonName number="${number}">${groups}</PersonName>`;
}

function isPersonName(v: DicomJsonValue): v is PersonName {
  return typeof v === 'object' && v !== null && ('Alphabetic' in v || 'Ideographic' in v || 'Phonetic' in v);
}

/** (gggg,xxee) of a private group is reserved by the Private Creator in (gggg,00xx) (PS3.5 7.8.1). */
function privateCreator(tag: string, ds: DicomJsonDataset): string | undefined {
  const group = Number.parseInt(tag.slice(0, 4), 16);
  const element = Number.parseInt(tag.slice(4), 16);
  if ((group & 1) === 0 || element < 0x1000) return undefined;
  const creatorTag = tag.slice(0, 4) + '00' + tag.slice(4, 6);
  const v = ds[creatorTag]?.Value?.[0];
  return typeof v === 'string' ? v : undefined;
}

function values(attr: DicomJsonAttribute): string {
  if (attr.BulkDataURI !== undefined) return `<BulkData uri="${escapeAttribute(attr.BulkDataURI)}"/>`;
  if (attr.InlineBinary !== undefined) return `<InlineBinary>${escapeText(attr.InlineBinary)}</InlineBinary>`;
  let out = '';
  (attr.Value ?? []).forEach((v, i) => {
    const number = i + 1;
    // An empty value inside a multi-valued attribute has no element; the numbers keep positions (PS3.19 A.1).
    if (v === null) return;
    if (attr.vr === 'SQ') out += `<Item number="${number}">${attributes(v as DicomJsonDataset)}</Item>`;
    else if (attr.vr === 'PN' && isPersonName(v)) out += personName(v, number);
    else out += `<Value number="${number}">${escapeText(String(v))}</Value>`;
  });
  return out;
}

function attributes(ds: DicomJsonDataset): string {
  let out = '';
  for (const tag of Object.keys(ds).sort()) {
    const attr = ds[tag]!;
    let head = `<DicomAttribute tag="${escapeAttribute(tag)}" vr="${escapeAttribute(attr.vr)}"`;
    const keyword = tagToKeyword(tag);
    if (keyword) head += ` keyword="${keyword}"`;
    const creator = privateCreator(tag, ds);
    if (creator !== undefined) head += ` privateCreator="${escapeAttribute(creator)}"`;
    const body = values(attr);
    out += body === '' ? `${head}/>` : `${head}>${body}</DicomAttribute>`;
  }
  return out;
}

/** One dataset as a complete application/dicom+xml document (PS3.19 A.1, PS3.18 F.3 / 8.7.3.2). */
export function toNativeDicomXml(ds: DicomJsonDataset): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<NativeDicomModel xmlns="${NAMESPACE}" xml:space="preserve">${attributes(ds)}</NativeDicomModel>\n`;
}
