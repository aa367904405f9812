// What one QIDO-RS match returns (PS3.18 10.6.3.3): the level's required return attributes, the
// matched and the included attributes, the parents' attributes on relational queries, never an
// attribute of a level below the query level. Shared by every IndexStore so that they return the
// same thing; RetrieveURL (0008,1190) is added by the service layer.

import type { DicomJsonAttribute, DicomJsonDataset } from '../../dicom/json-model.js';
import {
  INSTANCE_AVAILABILITY,
  REQUIRED_RETURN,
  attributeByTag,
  isAtOrAbove,
  levelOfTag,
  returnedLevels,
  type EntityLevel,
} from '../../dicom/levels.js';
import type { QidoQuery } from './ast.js';

/** The datasets of one match and of its parents, derived attributes included; read lazily. */
export type EntityDatasets = (level: EntityLevel) => DicomJsonDataset;

export interface StudyDerived {
  modalities: string[];
  sopClasses: string[];
  numberOfSeries: number;
  numberOfInstances: number;
}

const list = (vr: string, values: string[]): DicomJsonAttribute => (values.length > 0 ? { vr, Value: values } : { vr });

/** A study document with ModalitiesInStudy, SOPClassesInStudy and the counts (PS3.4 C.3.4). */
export function withStudyDerived(study: DicomJsonDataset, d: StudyDerived): DicomJsonDataset {
  return {
    ...study,
    '00080061': list('CS', d.modalities),
    '00080062': list('UI', d.sopClasses),
    '00201206': { vr: 'IS', Value: [d.numberOfSeries] },
    '00201208': { vr: 'IS', Value: [d.numberOfInstances] },
  };
}

export function withSeriesDerived(series: DicomJsonDataset, numberOfInstances: number): DicomJsonDataset {
  return { ...series, '00201209': { vr: 'IS', Value: [numberOfInstances] } };
}

/** The instance's own dataset plus AvailableTransferSyntaxUID: the syntax it is stored in. */
export function withInstanceDerived(instance: DicomJsonDataset, transferSyntaxUID: string): DicomJsonDataset {
  return { ...instance, '00083002': { vr: 'UI', Value: [transferSyntaxUID] } };
}

export function responseDataset(query: QidoQuery, datasetOf: EntityDatasets): DicomJsonDataset {
  const cache = new Map<EntityLevel, DicomJsonDataset>();
  const dataset = (level: EntityLevel) => {
    let ds = cache.get(level);
    if (!ds) cache.set(level, (ds = datasetOf(level)));
    return ds;
  };
  const out: DicomJsonDataset = {};

  /** Adds one attribute from the entity of its level; `emptyIfAbsent` answers a zero-length value. */
  const put = (tag: string, emptyIfAbsent: boolean) => {
    if (tag in out) return;
    if (tag === '00080056') {
      out[tag] = { vr: 'CS', Value: [INSTANCE_AVAILABILITY] };
      return;
    }
    const level = levelOfTag(tag);
    if (!isAtOrAbove(level, query.level)) return;
    const attr = dataset(level)[tag];
    if (attr) out[tag] = attr;
    else if (emptyIfAbsent) {
      // Unknown to our table and absent: we cannot even name its VR, so it is left out.
      const def = attributeByTag(tag);
      if (def) out[tag] = { vr: def.vr };
    }
  };

  const levels = returnedLevels(query.level, query.scope);
  for (const level of levels) {
    if (level === 'patient') continue; // part of the study level in the Study Root model
    for (const key of REQUIRED_RETURN[level]) put(key.tag, key.ifKnown !== true);
  }
  for (const f of query.filters) put(f.path[0]!, true);
  if (query.includeFields === 'all') {
    for (const level of levels) {
      // The instance document is the whole dataset: take only its instance-level attributes.
      for (const tag of Object.keys(dataset(level))) if (levelOfTag(tag) === level) put(tag, false);
    }
  } else {
    for (const tag of query.includeFields) put(tag, true);
  }
  return out; // key order is the serializer's job (dicom/json-serialize.ts)
}
