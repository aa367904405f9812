// Small Part 10 objects (Explicit VR Little Endian) with exactly the policy attributes a test chooses:
// InstitutionName, ReferringPhysicianName, Modality, AccessionNumber, StudyDate, ConfidentialityCode, plus a
// tiny native Pixel Data (so frames and a BulkDataURI exist), single- or multi-frame.
import { el, str, u16 } from '../dicom/synthetic.js';

export const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
export const MR_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.4';
/** Multi-frame Grayscale Word Secondary Capture Image Storage. */
export const MULTIFRAME_WORD_SC = '1.2.840.10008.5.1.4.1.1.7.3';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

export interface InstanceSpec {
  study: string;
  series: string;
  sop: string;
  modality: string;
  institution?: string;
  referringPhysician?: string;
  accessionNumber?: string;
  studyDate?: string;
  patientId?: string;
  patientName?: string;
  confidentiality?: string;
  seriesNumber?: number;
  instanceNumber?: number;
  /** Default 1; more makes a Multi-frame Grayscale Word SC object. */
  frames?: number;
  sopClass?: string;
}

const ROWS = 4;
const COLUMNS = 4;

/** The Part 10 bytes of one instance; every pixel of frame f (1-based) of this object is `seed + f`. */
export function policyInstance(s: InstanceSpec, seed = 0): Buffer {
  const frames = s.frames ?? 1;
  const sopClass = s.sopClass ?? (frames > 1 ? MULTIFRAME_WORD_SC : s.modality === 'MR' ? MR_IMAGE_STORAGE : CT_IMAGE_STORAGE);
  const pixels = Buffer.alloc(ROWS * COLUMNS * 2 * frames);
  for (let f = 0; f < frames; f++) for (let p = 0; p < ROWS * COLUMNS; p++) pixels.writeUInt16LE((seed + f + 1 + p) & 0xffff, (f * ROWS * COLUMNS + p) * 2);
  const optional = (tag: number, vr: string, value: string | undefined): Buffer[] => (value === undefined ? [] : [el(tag, vr, str(value, vr))]);
  const dataset = Buffer.concat([
    el(0x00080016, 'UI', str(sopClass, 'UI')),
    el(0x00080018, 'UI', str(s.sop, 'UI')),
    ...optional(0x00080020, 'DA', s.studyDate),
    ...optional(0x00080050, 'SH', s.accessionNumber),
    el(0x00080060, 'CS', str(s.modality, 'CS')),
    ...optional(0x00080080, 'LO', s.institution),
    ...optional(0x00080090, 'PN', s.referringPhysician),
    el(0x00100010, 'PN', str(s.patientName ?? 'TEST^PATIENT', 'PN')),
    el(0x00100020, 'LO', str(s.patientId ?? 'PID-1', 'LO')),
    el(0x0020000d, 'UI', str(s.study, 'UI')),
    el(0x0020000e, 'UI', str(s.series, 'UI')),
    el(0x00200011, 'IS', str(String(s.seriesNumber ?? 1), 'IS')),
    el(0x00200013, 'IS', str(String(s.instanceNumber ?? 1), 'IS')),
    el(0x00280002, 'US', u16(1)),
    el(0x00280004, 'CS', str('MONOCHROME2', 'CS')),
    ...(frames > 1 ? [el(0x00280008, 'IS', str(String(frames), 'IS'))] : []),
    el(0x00280010, 'US', u16(ROWS)),
    el(0x00280011, 'US', u16(COLUMNS)),
    el(0x00280100, 'US', u16(16)),
    el(0x00280101, 'US', u16(16)),
    el(0x00280102, 'US', u16(15)),
    el(0x00280103, 'US', u16(0)),
    ...optional(0x00401008, 'LO', s.confidentiality),
    el(0x7fe00010, 'OW', pixels),
  ]);
  const metaBody = Buffer.concat([
    el(0x00020001, 'OB', Buffer.from([0, 1])),
    el(0x00020002, 'UI', str(sopClass, 'UI')),
    el(0x00020003, 'UI', str(s.sop, 'UI')),
    el(0x00020010, 'UI', str(EXPLICIT_LE, 'UI')),
  ]);
  const groupLength = el(0x00020000, 'UL', Buffer.from(new Uint32Array([metaBody.length]).buffer));
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), groupLength, metaBody, dataset]);
}
