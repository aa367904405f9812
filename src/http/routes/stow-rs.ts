// STOW-RS (PS3.18 10.5): POST {base}/studies and POST {base}/studies/{study}.
// The body is never buffered: multipart parts stream into staged blobs (services/store-instances.ts).

import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import { storeInstances, type IncomingPart, type StoreDeps } from '../../services/store-instances.js';
import { storeResponse, storeStatus } from '../../services/store-response.js';
import { parseMediaType } from '../media-types.js';
import { parseMultipartContentType, readMultipart, type MultipartLimits } from '../multipart.js';
import { auditStudy } from '../plugins/audit-trail.js';
import { uidParam } from '../route-paths.js';
import { urlsFor, type UrlSettings } from '../request-urls.js';
import { negotiateDatasetResponse, sendDatasets } from '../dataset-response.js';
import { AuditEventType } from '../../audit/audit-record.js';
import { auditedStudy } from '../../audit/auditor.js';

export interface StowRouteOptions {
  store: StoreDeps;
  limits: MultipartLimits;
  urls: UrlSettings;
}

/** Counts bytes of a request body and stops it at `max` (the aggregate cap, SECURITY.md case 17). */
async function* capped(source: AsyncIterable<Buffer>, max: number, what: string): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const chunk of source) {
    total += chunk.length;
    if (total > max) throw new AppError('PAYLOAD_TOO_LARGE', `${what} exceeds ${max} bytes`);
    yield chunk;
  }
}

async function* multipartParts(body: AsyncIterable<Buffer>, boundary: string, limits: MultipartLimits): AsyncGenerator<IncomingPart> {
  for await (const part of readMultipart(body, boundary, limits)) {
    const contentType = part.contentType === undefined ? undefined : parseMediaType(part.contentType).essence;
    yield { contentType, body: part.body };
  }
}

async function* singlePart(part: IncomingPart): AsyncGenerator<IncomingPart> {
  yield part;
}

/** PS3.18 10.5.1.1: multipart/related; type="application/dicom" (or a single application/dicom body). */
function partsOf(request: FastifyRequest, limits: MultipartLimits): AsyncIterable<IncomingPart> {
  const header = request.headers['content-type'];
  if (!header) throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'Content-Type is required: multipart/related; type="application/dicom"');
  // Request bodies are not decoded: a gzip bomb must not get a chance (SECURITY.md case 19).
  const encoding = request.headers['content-encoding'];
  if (encoding && encoding.toLowerCase() !== 'identity') throw new AppError('UNSUPPORTED_MEDIA_TYPE', `Content-Encoding ${encoding} is not accepted`);
  const mediaType = parseMediaType(header);
  const body = request.raw as Readable & AsyncIterable<Buffer>;
  if (mediaType.essence === 'application/dicom') {
    // A single-part body is one instance: the part cap is the one that binds (the multipart reader applies
    // the part and total caps itself).
    const max = Math.min(limits.maxPartBytes, limits.maxTotalBytes);
    return singlePart({ contentType: 'application/dicom', body: capped(body, max, 'the instance') });
  }
  if (mediaType.essence !== 'multipart/related') {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', `${mediaType.essence} is not accepted: use multipart/related; type="application/dicom"`);
  }
  const { boundary, type } = parseMultipartContentType(header);
  if (type !== undefined && type !== 'application/dicom') {
    // Metadata + bulk data STOW (application/dicom+json / +xml) is not offered (CONFORMANCE.md).
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', `multipart/related type ${type} is not accepted: use type="application/dicom"`);
  }
  return multipartParts(body, boundary, limits);
}

export async function stowRoutes(app: FastifyInstance, options: StowRouteOptions): Promise<void> {
  // The body stays a stream: no parser reads it (the '*' parser hands the raw request to the handler).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  const handler = async (request: FastifyRequest<{ Params: { study?: string } }>, reply: FastifyReply) => {
    const study = request.params.study === undefined ? undefined : uidParam(request.params.study, 'StudyInstanceUID');
    request.audit.event('store');
    const responseType = negotiateDatasetResponse(request);
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > options.limits.maxTotalBytes) {
      throw new AppError('PAYLOAD_TOO_LARGE', `the request body exceeds ${options.limits.maxTotalBytes} bytes`);
    }
    const parts = partsOf(request, options.limits);
    const outcomes = await storeInstances(options.store, { studyInstanceUID: study, parts, access: request.access });
    if (outcomes.length === 0) throw new AppError('BAD_REQUEST', 'the request contains no DICOM instance');
    const failureReasons: number[] = [];
    for (const o of outcomes) {
      if (o.status !== 'failed') continue;
      request.log.info({ reason: o.reason, detail: o.detail }, 'instance not stored');
      failureReasons.push(o.reason);
    }
    // For the STOW failure counters (plugins/metrics.ts).
    request.stowFailureReasons = failureReasons;
    const dataset = storeResponse(outcomes, urlsFor(request, options.urls), study);
    const status = storeStatus(outcomes);
    // Audit: 110104 C (U when an instance was replaced), one study object per study stored (its patient from the
    // index, after the commit); some instances refused: outcome 4, all of them: 8.
    const stored = outcomes.filter((o) => o.status === 'stored');
    request.audit.event('store', { replaced: stored.some((o) => o.replaced === true) });
    for (const uid of new Set(stored.map((o) => o.studyInstanceUID))) {
      auditStudy(request, options.store.index, uid, stored.filter((o) => o.studyInstanceUID === uid).map((o) => o.sopClassUID));
    }
    // SECURITY.md 8 case 26: a preamble that could make the file a program was stored as zeros; say so
    // (110113 Security Alert, 110135 Object Security Attributes Changed, the study as the object).
    for (const o of stored) {
      if (!o.preambleZeroed) continue;
      request.log.warn({ security: true, preamble: o.preambleZeroed }, 'preamble stored as zeros');
      const study = options.store.index.studyAttributes(o.studyInstanceUID);
      request.audit.alert(
        AuditEventType.objectSecurityAttributesChanged,
        `PS3.10 preamble held a program header (PE/ELF/Mach-O/script): stored as zeros (SOP Instance ${o.sopInstanceUID})`,
        study ? auditedStudy(study) : { studyInstanceUID: o.studyInstanceUID, patientId: '' },
      );
    }
    if (status === 202) {
      const warned = stored.filter((o) => o.warning !== undefined).length;
      request.audit.outcome(4, `${outcomes.length - stored.length} of ${outcomes.length} instances not stored, ${warned} stored with warnings`);
    }
    if (status === 409) request.audit.outcome(8, 'no instance stored');
    return sendDatasets(reply.code(status), responseType, [dataset], { single: true });
  };
  app.post('/studies', handler);
  app.post('/studies/:study', handler);
}
