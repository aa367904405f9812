// What the policy engine knows about a study (the Cedar resource entity `Study`, policy/cedar-schema.ts), and
// what the index keeps as NOT NULL columns so that a policy compiled to SQL means the same as a decision
// on one study (SECURITY.md 6: SQL NULL is not Cedar's error semantics, so absent values are '' or 0).
//
// Policy attributes are not PHI-free (patientId, referringPhysician): they never go to the application log.

export interface StudyAttributes {
  studyInstanceUID: string;
  /** InstitutionName (0008,0080) of the first instance stored in the study; '' when it had none. */
  institution: string;
  /**
   * ReferringPhysicianName (0008,0090), alphabetic group folded the way QIDO folds person names
   * (upper case, accents removed: index/query/normalize.ts foldPersonName), e.g. 'SMITH^JOHN'; '' when absent.
   */
  referringPhysician: string;
  /** ModalitiesInStudy: every Modality of the study's series, sorted, no duplicates. */
  modalities: string[];
  /** AccessionNumber (0008,0050); '' when absent. */
  accessionNumber: string;
  /** PatientID (0010,0020); '' when absent. */
  patientId: string;
  /** StudyDate (0008,0020) as the number YYYYMMDD (Cedar has no date type we can compile to SQL); 0 when absent. */
  studyDate: number;
  /** Labels an administrator put on the study (PUT /dicomweb/admin/studies/{uid}/labels), sorted. */
  labels: string[];
  /** ConfidentialityCode (0040,1008) of the first instance stored; an administrator may change it. '' when absent. */
  confidentiality: string;
}

/** The scalar attributes (one value per study), with the type of their values. */
export const STUDY_SCALAR_ATTRIBUTES = {
  studyInstanceUID: 'string',
  institution: 'string',
  referringPhysician: 'string',
  accessionNumber: 'string',
  patientId: 'string',
  studyDate: 'number',
  confidentiality: 'string',
} as const;

export type StudyScalarAttribute = keyof typeof STUDY_SCALAR_ATTRIBUTES;

/** The set-valued attributes. */
export const STUDY_SET_ATTRIBUTES = ['modalities', 'labels'] as const;
export type StudySetAttribute = (typeof STUDY_SET_ATTRIBUTES)[number];
