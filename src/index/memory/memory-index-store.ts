// IndexStore in plain JS maps: for tests (app.inject() without a database) and as the reference the
// SQLite store is held to by test/contracts/index-store.contract.ts. Simple over fast: derived
// attributes are computed when read, searches scan every entity of the level.

import type { DicomJsonDataset } from '../../dicom/json-model.js';
import type { EntityLevel } from '../../dicom/levels.js';
import type { StudyAttributes } from '../../policy/study-attributes.js';
import { studyAttributesOf } from '../../policy/study-attributes-of.js';
import { evaluateStudyCondition, type StudyCondition } from '../../policy/study-condition.js';
import type {
  CommitOutcome,
  DuplicatePolicy,
  IndexStore,
  InstanceRecord,
  InstanceWithDataset,
  RemovedInstances,
  RetrieveScope,
  SearchResult,
  StoredInstanceRef,
  StudyRetentionFacts,
} from '../index-store.js';
import type { QidoQuery } from '../query/ast.js';
import { levelDocuments, patientKey } from '../level-documents.js';
import { matchesFilters } from '../query/match.js';
import { normalizeText, parseIntegerString, storedDate } from '../query/normalize.js';
import {
  responseDataset,
  withInstanceDerived,
  withSeriesDerived,
  withStudyDerived,
  type EntityDatasets,
} from '../query/response-dataset.js';

interface Patient {
  pk: number;
  key: string | undefined;
  doc: DicomJsonDataset;
}
interface Study {
  pk: number;
  patientPk: number;
  uid: string;
  doc: DicomJsonDataset;
  series: Set<number>;
  /** The policy attributes fixed by the study's first instance (study-attributes-of.ts); modalities are derived. */
  policy: StudyAttributes;
  labels: string[];
}
interface Series {
  pk: number;
  studyPk: number;
  uid: string;
  doc: DicomJsonDataset;
  instances: Set<number>;
}
interface Instance {
  pk: number;
  seriesPk: number;
  studyPk: number;
  ref: StoredInstanceRef;
  dataset: DicomJsonDataset;
  receivedAt: Date;
}

export class MemoryIndexStore implements IndexStore {
  private nextPk = 1;
  private readonly pending = new Map<string, number>();
  private readonly patients = new Map<number, Patient>();
  private readonly studies = new Map<number, Study>();
  private readonly series = new Map<number, Series>();
  private readonly instances = new Map<number, Instance>();
  private readonly patientByKey = new Map<string, number>();
  private readonly studyByUid = new Map<string, number>();
  private readonly seriesByKey = new Map<string, number>();
  private readonly instanceBySop = new Map<string, number>();

  addPending(blobKey: string, at: Date): void {
    this.pending.set(blobKey, at.getTime());
  }

  removePending(blobKey: string): void {
    this.pending.delete(blobKey);
  }

  listPending(before: Date): string[] {
    return [...this.pending]
      .filter(([, at]) => at < before.getTime())
      .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))
      .map(([key]) => key);
  }

  /** IndexStore.writeUnsynced: nothing is ever on disk here. */
  writeUnsynced<T>(writes: () => T): T {
    return writes();
  }

  sync(): Promise<void> {
    return Promise.resolve();
  }

  commit(records: InstanceRecord[], policy: DuplicatePolicy): CommitOutcome[] {
    return records.map((r) => {
      const outcome = this.commitOne(r, policy);
      // IndexStore.commit: the blob left unreferenced stays (or becomes) pending until the caller deleted it.
      if (outcome.kind === 'stored' || outcome.kind === 'replaced') this.pending.delete(r.blobKey);
      if (outcome.kind === 'replaced') this.pending.set(outcome.previousBlobKey, r.receivedAt.getTime());
      return outcome;
    });
  }

  private commitOne(r: InstanceRecord, policy: DuplicatePolicy): CommitOutcome {
    const docs = levelDocuments(r);
    const existingPk = this.instanceBySop.get(r.sopInstanceUID);
    if (existingPk !== undefined) {
      const existing = this.instances.get(existingPk)!;
      if (existing.ref.studyInstanceUID !== r.studyInstanceUID || existing.ref.seriesInstanceUID !== r.seriesInstanceUID) {
        return { kind: 'duplicate', existing: copyRef(existing.ref) };
      }
      if (existing.ref.sha256 === r.sha256) return { kind: 'identical' };
      if (policy === 'reject') return { kind: 'duplicate', existing: copyRef(existing.ref) };
      const previousBlobKey = existing.ref.blobKey;
      existing.ref = refOf(r);
      existing.dataset = docs.instance;
      existing.receivedAt = new Date(r.receivedAt.getTime());
      // A replacement is how a sender corrects data: the levels take its attributes.
      const study = this.studies.get(existing.studyPk)!;
      study.doc = docs.study;
      this.series.get(existing.seriesPk)!.doc = docs.series;
      const patient = this.patients.get(study.patientPk)!;
      if (patient.key !== undefined && patient.key === patientKey(docs.patient)) patient.doc = docs.patient;
      return { kind: 'replaced', previousBlobKey };
    }

    let studyPk = this.studyByUid.get(r.studyInstanceUID);
    if (studyPk === undefined) {
      const key = patientKey(docs.patient);
      let patientPk = key === undefined ? undefined : this.patientByKey.get(key);
      if (patientPk === undefined) {
        patientPk = this.nextPk++;
        this.patients.set(patientPk, { pk: patientPk, key, doc: docs.patient });
        if (key !== undefined) this.patientByKey.set(key, patientPk);
      }
      studyPk = this.nextPk++;
      const policy = studyAttributesOf(docs.instance, undefined);
      this.studies.set(studyPk, { pk: studyPk, patientPk, uid: r.studyInstanceUID, doc: docs.study, series: new Set(), policy, labels: [] });
      this.studyByUid.set(r.studyInstanceUID, studyPk);
    }
    const seriesKey = `${studyPk}|${r.seriesInstanceUID}`;
    let seriesPk = this.seriesByKey.get(seriesKey);
    if (seriesPk === undefined) {
      seriesPk = this.nextPk++;
      this.series.set(seriesPk, { pk: seriesPk, studyPk, uid: r.seriesInstanceUID, doc: docs.series, instances: new Set() });
      this.seriesByKey.set(seriesKey, seriesPk);
      this.studies.get(studyPk)!.series.add(seriesPk);
    }
    const pk = this.nextPk++;
    this.instances.set(pk, { pk, seriesPk, studyPk, ref: refOf(r), dataset: docs.instance, receivedAt: new Date(r.receivedAt.getTime()) });
    this.instanceBySop.set(r.sopInstanceUID, pk);
    this.series.get(seriesPk)!.instances.add(pk);
    return { kind: 'stored' };
  }

  findInstance(sopInstanceUID: string): StoredInstanceRef | undefined {
    const pk = this.instanceBySop.get(sopInstanceUID);
    return pk === undefined ? undefined : copyRef(this.instances.get(pk)!.ref);
  }

  listInstances(scope: RetrieveScope): StoredInstanceRef[] {
    return this.scopeInstances(scope).map((i) => copyRef(i.ref));
  }

  listInstanceDatasets(scope: RetrieveScope): InstanceWithDataset[] {
    return this.scopeInstances(scope).map((i) => ({ ref: copyRef(i.ref), dataset: structuredClone(i.dataset) }));
  }

  listAllInstances(page: { after?: string; limit: number }): StoredInstanceRef[] {
    const after = page.after ?? '';
    // Code-unit order, as SQLite's default BINARY collation compares these ASCII UIDs.
    const sops = [...this.instanceBySop.keys()].filter((sop) => sop > after).sort();
    return sops.slice(0, page.limit).map((sop) => copyRef(this.instances.get(this.instanceBySop.get(sop)!)!.ref));
  }

  /** The instances of a retrieve scope in retrieve order (IndexStore.listInstances). */
  private scopeInstances(scope: RetrieveScope): Instance[] {
    const studyPk = this.studyByUid.get(scope.studyInstanceUID);
    if (studyPk === undefined) return [];
    const number = (doc: DicomJsonDataset, tag: string) => parseIntegerString(doc[tag]?.Value?.[0]);
    const series = [...this.studies.get(studyPk)!.series]
      .map((pk) => this.series.get(pk)!)
      .filter((se) => scope.seriesInstanceUID === undefined || se.uid === scope.seriesInstanceUID)
      .sort((a, b) => compareNullsLast(number(a.doc, '00200011'), number(b.doc, '00200011')) || a.pk - b.pk);
    const out: Instance[] = [];
    for (const se of series) {
      const instances = [...se.instances]
        .map((pk) => this.instances.get(pk)!)
        .filter((i) => scope.sopInstanceUID === undefined || i.ref.sopInstanceUID === scope.sopInstanceUID)
        .sort((a, b) => compareNullsLast(number(a.dataset, '00200013'), number(b.dataset, '00200013')) || a.pk - b.pk);
      out.push(...instances);
    }
    return out;
  }

  search(query: QidoQuery, access?: StudyCondition): SearchResult {
    // Decided once per study of this search, as the SQL WHERE decides it per row.
    const permitted = new Map<number, boolean>();
    const allowed = (studyPk: number): boolean => {
      if (access === undefined) return true;
      let ok = permitted.get(studyPk);
      if (ok === undefined) {
        ok = evaluateStudyCondition(access, this.attributesOf(this.studies.get(studyPk)!));
        permitted.set(studyPk, ok);
      }
      return ok;
    };
    const matches: EntityDatasets[] = [];
    for (const [studyPk, candidate] of this.candidates(query)) {
      if (allowed(studyPk) && matchesFilters(query.filters, candidate)) matches.push(candidate);
    }
    const page = matches.slice(query.offset, query.offset + query.limit);
    return { matches: page.map((m) => responseDataset(query, m)), total: matches.length };
  }

  studyAttributes(studyInstanceUID: string): StudyAttributes | undefined {
    const pk = this.studyByUid.get(studyInstanceUID);
    return pk === undefined ? undefined : this.attributesOf(this.studies.get(pk)!);
  }

  setStudyLabels(studyInstanceUID: string, labels: string[]): boolean {
    const pk = this.studyByUid.get(studyInstanceUID);
    if (pk === undefined) return false;
    this.studies.get(pk)!.labels = [...new Set(labels)].sort();
    return true;
  }

  setStudyConfidentiality(studyInstanceUID: string, confidentiality: string): boolean {
    const pk = this.studyByUid.get(studyInstanceUID);
    if (pk === undefined) return false;
    this.studies.get(pk)!.policy.confidentiality = confidentiality;
    return true;
  }

  removeInstances(scope: RetrieveScope): RemovedInstances {
    // Insertion order, as the SQLite store returns them: a restore rebuilds each level from the same first instance.
    const removed = this.scopeInstances(scope).sort((a, b) => a.pk - b.pk);
    const removedStudies: RemovedInstances['removedStudies'] = [];
    for (const i of removed) {
      this.instances.delete(i.pk);
      this.instanceBySop.delete(i.ref.sopInstanceUID);
      const se = this.series.get(i.seriesPk)!;
      se.instances.delete(i.pk);
      if (se.instances.size > 0) continue;
      this.series.delete(se.pk);
      this.seriesByKey.delete(`${se.studyPk}|${se.uid}`);
      const study = this.studies.get(se.studyPk)!;
      study.series.delete(se.pk);
      if (study.series.size > 0) continue;
      this.studies.delete(study.pk);
      this.studyByUid.delete(study.uid);
      removedStudies.push({ studyInstanceUID: study.uid, labels: [...study.labels], confidentiality: study.policy.confidentiality });
      if ([...this.studies.values()].some((s) => s.patientPk === study.patientPk)) continue;
      const patient = this.patients.get(study.patientPk)!;
      this.patients.delete(patient.pk);
      if (patient.key !== undefined) this.patientByKey.delete(patient.key);
    }
    return { records: removed.map(recordOf), removedStudies };
  }

  retentionFacts(studyInstanceUID: string): StudyRetentionFacts | undefined {
    const pk = this.studyByUid.get(studyInstanceUID);
    if (pk === undefined) return undefined;
    const study = this.studies.get(pk)!;
    const instances = [...this.instances.values()].filter((i) => i.studyPk === pk);
    const studyDate = storedDate(study.doc['00080020']?.Value?.[0]);
    const patientBirthDate = storedDate(this.patients.get(study.patientPk)!.doc['00100030']?.Value?.[0]);
    const patientAge = instances.map((i) => normalizeText(i.dataset['00101010']?.Value?.[0])).find((age) => age !== undefined);
    const derived = this.studyDerived(study);
    return {
      ...(studyDate === undefined ? {} : { studyDate }),
      receivedAt: new Date(Math.min(...instances.map((i) => i.receivedAt.getTime()))),
      ...(patientBirthDate === undefined ? {} : { patientBirthDate }),
      ...(patientAge === undefined ? {} : { patientAge }),
      patientId: study.policy.patientId,
      modalities: derived.modalities,
      institution: study.policy.institution,
      sopClasses: derived.sopClasses,
    };
  }

  /** A fresh copy of the study's policy attributes, modalities as ModalitiesInStudy has them. */
  private attributesOf(study: Study): StudyAttributes {
    return { ...study.policy, modalities: this.studyDerived(study).modalities, labels: [...study.labels] };
  }

  counts() {
    return {
      patients: this.patients.size,
      studies: this.studies.size,
      series: this.series.size,
      instances: this.instances.size,
    };
  }

  close(): void {}

  /** Every entity of the query level inside the URL scope, in insertion (pk) order, with its study's pk. */
  private *candidates(query: QidoQuery): Generator<[number, EntityDatasets]> {
    const { studyInstanceUID, seriesInstanceUID } = query.scope;
    const inScope = (studyPk: number, seriesPk?: number) =>
      (studyInstanceUID === undefined || this.studies.get(studyPk)!.uid === studyInstanceUID) &&
      (seriesInstanceUID === undefined || seriesPk === undefined || this.series.get(seriesPk)!.uid === seriesInstanceUID);
    if (query.level === 'study') {
      for (const s of this.studies.values()) if (inScope(s.pk)) yield [s.pk, this.view(s.pk)];
    } else if (query.level === 'series') {
      for (const se of this.series.values()) if (inScope(se.studyPk, se.pk)) yield [se.studyPk, this.view(se.studyPk, se.pk)];
    } else {
      for (const i of this.instances.values()) {
        if (inScope(i.studyPk, i.seriesPk)) yield [i.studyPk, this.view(i.studyPk, i.seriesPk, i.pk)];
      }
    }
  }

  private view(studyPk: number, seriesPk?: number, instancePk?: number): EntityDatasets {
    return (level: EntityLevel): DicomJsonDataset => {
      const study = this.studies.get(studyPk)!;
      switch (level) {
        case 'patient':
          return this.patients.get(study.patientPk)!.doc;
        case 'study':
          return withStudyDerived(study.doc, this.studyDerived(study));
        case 'series': {
          const se = seriesPk === undefined ? undefined : this.series.get(seriesPk);
          return se ? withSeriesDerived(se.doc, se.instances.size) : {};
        }
        case 'instance': {
          const i = instancePk === undefined ? undefined : this.instances.get(instancePk);
          return i ? withInstanceDerived(i.dataset, i.ref.transferSyntaxUID) : {};
        }
      }
    };
  }

  private studyDerived(study: Study) {
    const modalities = new Set<string>();
    const sopClasses = new Set<string>();
    let numberOfInstances = 0;
    for (const sePk of study.series) {
      const se = this.series.get(sePk)!;
      const modality = normalizeText(se.doc['00080060']?.Value?.[0]);
      if (modality !== undefined) modalities.add(modality);
      for (const iPk of se.instances) sopClasses.add(this.instances.get(iPk)!.ref.sopClassUID);
      numberOfInstances += se.instances.size;
    }
    return {
      modalities: [...modalities].sort(),
      sopClasses: [...sopClasses].sort(),
      numberOfSeries: study.series.size,
      numberOfInstances,
    };
  }
}

function refOf(r: InstanceRecord): StoredInstanceRef {
  return {
    studyInstanceUID: r.studyInstanceUID,
    seriesInstanceUID: r.seriesInstanceUID,
    sopInstanceUID: r.sopInstanceUID,
    sopClassUID: r.sopClassUID,
    transferSyntaxUID: r.transferSyntaxUID,
    blobKey: r.blobKey,
    size: r.size,
    sha256: r.sha256,
    ...(r.layout === undefined ? {} : { layout: structuredClone(r.layout) }),
  };
}

/** What commit() takes to store the instance again (a copy: the caller may change it). */
function recordOf(i: Instance): InstanceRecord {
  return { ...copyRef(i.ref), dataset: structuredClone(i.dataset), receivedAt: new Date(i.receivedAt.getTime()) };
}

/** A caller must not be able to change what the store holds through a returned object. */
function copyRef(ref: StoredInstanceRef): StoredInstanceRef {
  return ref.layout === undefined ? { ...ref } : { ...ref, layout: structuredClone(ref.layout) };
}

/** Ascending, with absent values last (as SQLite's `x IS NULL, x` ordering). */
function compareNullsLast(a: number | undefined, b: number | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return 1;
  if (b === undefined) return -1;
  return a - b;
}
