// Keyword <-> tag <-> VR (dcmjs's PS3.6 dictionary), the tag constants, and the transfer syntax table.

import t from 'tap';
import { keywordToTag, tagToKeyword, vrOf } from '../../src/dicom/dictionary.js';
import * as T from '../../src/dicom/tags.js';
import { TRANSFER_SYNTAXES, transferSyntax } from '../../src/dicom/transfer-syntax.js';

t.test('every tag constant is named by its PS3.6 keyword', async (t) => {
  for (const [name, tag] of Object.entries(T)) {
    t.match(tag, /^[0-9A-F]{8}$/, `${name} is 8 uppercase hex digits`);
    t.equal(tagToKeyword(tag), name, `${tag} is ${name}`);
    t.equal(keywordToTag(name), tag, `${name} is ${tag}`);
  }
});

t.test('QIDO keys of PROTOCOL.md resolve both ways, with their VRs', async (t) => {
  const keys: Record<string, [string, string]> = {
    StudyDate: ['00080020', 'DA'],
    StudyTime: ['00080030', 'TM'],
    AccessionNumber: ['00080050', 'SH'],
    ModalitiesInStudy: ['00080061', 'CS'],
    ReferringPhysicianName: ['00080090', 'PN'],
    PatientName: ['00100010', 'PN'],
    PatientID: ['00100020', 'LO'],
    StudyInstanceUID: ['0020000D', 'UI'],
    StudyID: ['00200010', 'SH'],
    Modality: ['00080060', 'CS'],
    SeriesInstanceUID: ['0020000E', 'UI'],
    SeriesNumber: ['00200011', 'IS'],
    PerformedProcedureStepStartDate: ['00400244', 'DA'],
    PerformedProcedureStepStartTime: ['00400245', 'TM'],
    RequestAttributesSequence: ['00400275', 'SQ'],
    ScheduledProcedureStepID: ['00400009', 'SH'],
    RequestedProcedureID: ['00401001', 'SH'],
    SOPClassUID: ['00080016', 'UI'],
    SOPInstanceUID: ['00080018', 'UI'],
    InstanceNumber: ['00200013', 'IS'],
    InstanceAvailability: ['00080056', 'CS'],
    TimezoneOffsetFromUTC: ['00080201', 'SH'],
    RetrieveURL: ['00081190', 'UR'],
    PatientBirthDate: ['00100030', 'DA'],
    PatientSex: ['00100040', 'CS'],
    NumberOfStudyRelatedSeries: ['00201206', 'IS'],
    NumberOfStudyRelatedInstances: ['00201208', 'IS'],
    NumberOfSeriesRelatedInstances: ['00201209', 'IS'],
    SeriesDescription: ['0008103E', 'LO'],
    StudyDescription: ['00081030', 'LO'],
    InstitutionName: ['00080080', 'LO'],
    BodyPartExamined: ['00180015', 'CS'],
    SeriesDate: ['00080021', 'DA'],
    SeriesTime: ['00080031', 'TM'],
    IssuerOfPatientID: ['00100021', 'LO'],
    Rows: ['00280010', 'US'],
    Columns: ['00280011', 'US'],
    BitsAllocated: ['00280100', 'US'],
    NumberOfFrames: ['00280008', 'IS'],
    AvailableTransferSyntaxUID: ['00083002', 'UI'],
  };
  for (const [keyword, [tag, vr]] of Object.entries(keys)) {
    t.equal(keywordToTag(keyword), tag, keyword);
    t.equal(tagToKeyword(tag), keyword, tag);
    t.equal(vrOf(tag), vr, `${keyword} VR`);
  }
});

t.test('context-dependent, retired, private and unknown tags', async (t) => {
  t.equal(vrOf('7FE00010'), 'OW', 'Pixel Data "OB or OW" -> OW as in implicit VR (PS3.5 A.1)');
  t.equal(vrOf('00280106'), 'US', '"US or SS" -> US');
  t.equal(vrOf('00280000'), 'UL', 'group length');
  t.equal(vrOf('00190010'), 'LO', 'private creator');
  t.equal(vrOf('00191001'), undefined, 'private data');
  t.equal(vrOf('zz'), undefined);
  t.equal(tagToKeyword('60023000'), 'OverlayData', 'repeating group 60xx');
  t.equal(tagToKeyword('00080001'), 'LengthToEnd', 'retired: keyword without the RETIRED_ marker');
  t.equal(keywordToTag('LengthToEnd'), '00080001');
  t.equal(tagToKeyword('00191001'), undefined);
  t.equal(keywordToTag('patientname'), undefined, 'keywords are case-sensitive');
  t.equal(keywordToTag('toString'), undefined, 'no prototype keys');
  t.equal(keywordToTag('00100010'), undefined, 'a tag is not a keyword');
});

t.test('transfer syntax table (PS3.5 A, PS3.18 Table 8.7.3-2)', async (t) => {
  t.match(transferSyntax('1.2.840.10008.1.2'), { explicitVr: false, littleEndian: true, encapsulated: false, frameMediaType: 'application/octet-stream' });
  t.match(transferSyntax('1.2.840.10008.1.2.2'), { explicitVr: true, littleEndian: false });
  t.match(transferSyntax('1.2.840.10008.1.2.1.99'), { deflated: true, explicitVr: true, encapsulated: false });
  const media: Record<string, string> = {
    '1.2.840.10008.1.2.4.50': 'image/jpeg', '1.2.840.10008.1.2.4.51': 'image/jpeg', '1.2.840.10008.1.2.4.57': 'image/jpeg',
    '1.2.840.10008.1.2.4.70': 'image/jpeg', '1.2.840.10008.1.2.4.80': 'image/jls', '1.2.840.10008.1.2.4.81': 'image/jls',
    '1.2.840.10008.1.2.4.90': 'image/jp2', '1.2.840.10008.1.2.4.91': 'image/jp2', '1.2.840.10008.1.2.4.92': 'image/jpx',
    '1.2.840.10008.1.2.4.93': 'image/jpx', '1.2.840.10008.1.2.5': 'image/dicom-rle', '1.2.840.10008.1.2.4.100': 'video/mpeg2',
    '1.2.840.10008.1.2.4.101': 'video/mpeg2', '1.2.840.10008.1.2.4.102': 'video/mp4', '1.2.840.10008.1.2.4.106': 'video/mp4',
    '1.2.840.10008.1.2.4.201': 'image/jphc',
  };
  for (const [uid, type] of Object.entries(media)) t.match(transferSyntax(uid), { encapsulated: true, frameMediaType: type }, uid);
  t.equal(transferSyntax('1.2.840.10008.1.2.4.50')!.lossy, true);
  t.equal(transferSyntax('1.2.840.10008.1.2.4.70')!.lossy, false);
  t.equal(transferSyntax('1.2.840.10008.1.2.4.52'), undefined, 'retired JPEG processes are not supported');
  t.equal(new Set(TRANSFER_SYNTAXES.map((ts) => ts.uid)).size, TRANSFER_SYNTAXES.length, 'no duplicates');
});
