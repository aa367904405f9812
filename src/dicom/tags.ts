// Tags the server reads or writes by name, as 8 uppercase hex digits (the DICOM JSON key form, PS3.18 F.2.1).
// Names are the PS3.6 keywords. The full keyword <-> tag dictionary is in dictionary.ts.

// File Meta Information (PS3.10 7.1)
export const FileMetaInformationGroupLength = '00020000';
export const MediaStorageSOPClassUID = '00020002';
export const MediaStorageSOPInstanceUID = '00020003';
export const TransferSyntaxUID = '00020010';
export const ImplementationClassUID = '00020012';

// SOP Common, General Study/Series/Patient (PS3.3 C.12.1, C.7)
export const SpecificCharacterSet = '00080005';
export const SOPClassUID = '00080016';
export const SOPInstanceUID = '00080018';
export const StudyDate = '00080020';
export const SeriesDate = '00080021';
export const StudyTime = '00080030';
export const SeriesTime = '00080031';
export const AccessionNumber = '00080050';
export const IssuerOfAccessionNumberSequence = '00080051';
export const InstanceAvailability = '00080056';
export const Modality = '00080060';
export const ModalitiesInStudy = '00080061';
export const SOPClassesInStudy = '00080062';
export const InstitutionName = '00080080';
export const ReferringPhysicianName = '00080090';
export const TimezoneOffsetFromUTC = '00080201';
export const StudyDescription = '00081030';
export const SeriesDescription = '0008103E';
export const AvailableTransferSyntaxUID = '00083002';
export const PatientName = '00100010';
export const PatientID = '00100020';
export const IssuerOfPatientID = '00100021';
export const PatientBirthDate = '00100030';
export const PatientSex = '00100040';
export const OtherPatientIDsSequence = '00101002';
export const BodyPartExamined = '00180015';
export const StudyInstanceUID = '0020000D';
export const SeriesInstanceUID = '0020000E';
export const StudyID = '00200010';
export const SeriesNumber = '00200011';
export const InstanceNumber = '00200013';
export const NumberOfStudyRelatedSeries = '00201206';
export const NumberOfStudyRelatedInstances = '00201208';
export const NumberOfSeriesRelatedInstances = '00201209';
export const PerformedProcedureStepStartDate = '00400244';
export const PerformedProcedureStepStartTime = '00400245';
export const RequestAttributesSequence = '00400275';
export const ScheduledProcedureStepID = '00400009';
export const RequestedProcedureID = '00401001';

// Store Instances Response Module (PS3.18 Annex I, Table I.2-1) and retrieve links (PS3.18 10.6.3)
export const RetrieveURL = '00081190';
export const FailedSOPSequence = '00081198';
export const ReferencedSOPSequence = '00081199';
export const ReferencedSOPClassUID = '00081150';
export const ReferencedSOPInstanceUID = '00081155';
export const FailureReason = '00081197';
export const WarningReason = '00081196';
export const OtherFailuresSequence = '0008119A';
export const OriginalAttributesSequence = '04000561';

// Image Pixel / Multi-frame modules (PS3.3 C.7.6.3, C.7.6.6)
export const SamplesPerPixel = '00280002';
export const PhotometricInterpretation = '00280004';
export const PlanarConfiguration = '00280006';
export const NumberOfFrames = '00280008';
export const Rows = '00280010';
export const Columns = '00280011';
export const BitsAllocated = '00280100';
export const BitsStored = '00280101';
export const HighBit = '00280102';
export const PixelRepresentation = '00280103';
export const ExtendedOffsetTable = '7FE00001';
export const ExtendedOffsetTableLengths = '7FE00002';
export const FloatPixelData = '7FE00008';
export const DoubleFloatPixelData = '7FE00009';
export const PixelData = '7FE00010';

// Other large values the reader leaves out of the in-memory dataset when they are big.
export const WaveformData = '54001010';
export const EncapsulatedDocument = '00420011';
