// The Cedar schema every policy file is validated against (SECURITY.md 6). Namespace-free, so policies say
// `Role::"radiology"` and `Action::"read"`. The entities are built by policy/cedar-entities.ts from a Principal
// and from StudyAttributes; the two must stay in step with the attribute lists here (a test checks it).
//
// User (the principal; share principals never reach Cedar, policy/access.ts):
//   institution         String       the principal's institution, compared with Study.institution ('' if none)
//   referringPhysician  String       a referring physician's name, folded like Study.referringPhysician ('SMITH^JOHN')
//   npi                 String       National Provider Identifier or local practitioner id ('' if none)
//   sites               Set<String>  sites (e.g. a gateway's sending sites) the principal acts for
//   kind                String       how it authenticated: 'certificate' or 'token'
//   parents: its roles, as Role entities (`principal in Role::"admin"`)
//
// Study (the resource of search/read/store/delete/share; exactly StudyAttributes, every value always present):
//   studyInstanceUID    String       (0020,000D); also the entity id: Study::"1.2.3"
//   institution         String       InstitutionName (0008,0080) of the first instance stored; '' if absent
//   referringPhysician  String       ReferringPhysicianName (0008,0090), folded ('SMITH^JOHN'); '' if absent
//   modalities          Set<String>  ModalitiesInStudy
//   accessionNumber     String       (0008,0050); '' if absent
//   patientId           String       PatientID (0010,0020); '' if absent
//   studyDate           Long         StudyDate (0008,0020) as YYYYMMDD, e.g. 20240131; 0 if absent
//   labels              Set<String>  labels an administrator put on the study
//   confidentiality     String       ConfidentialityCode (0040,1008); '' if absent
//
// Archive (the resource of admin): one entity, Archive::"archive".
//
// Context (every action):
//   breakGlass          Bool         an emergency-access reason was given (every allowed use is audited)
//   breakGlassReason    String       that reason; '' when none

/** The id of the one Archive entity. */
export const ARCHIVE_ENTITY_ID = 'archive';

/** The actions whose resource is a Study (the rest, `admin`, act on the Archive). */
export const STUDY_ACTIONS = ['search', 'read', 'store', 'delete', 'share'] as const;

export const CEDAR_SCHEMA = `// dicomvault policy schema (src/policy/cedar-schema.ts)
entity Role;

entity User in [Role] {
  institution: String,
  referringPhysician: String,
  npi: String,
  sites: Set<String>,
  kind: String,
};

entity Study {
  studyInstanceUID: String,
  institution: String,
  referringPhysician: String,
  modalities: Set<String>,
  accessionNumber: String,
  patientId: String,
  studyDate: Long,
  labels: Set<String>,
  confidentiality: String,
};

entity Archive;

type RequestContext = {
  breakGlass: Bool,
  breakGlassReason: String,
};

action "search", "read", "store", "delete", "share" appliesTo {
  principal: [User],
  resource: [Study],
  context: RequestContext,
};

action "admin" appliesTo {
  principal: [User],
  resource: [Archive],
  context: RequestContext,
};
`;
