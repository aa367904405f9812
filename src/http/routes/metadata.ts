// WADO-RS Retrieve Metadata (PS3.18 10.4.1): GET {base}/studies/{s}/metadata, .../series/{x}/metadata,
// .../series/{x}/instances/{i}/metadata. The datasets come from the index (services/retrieve-metadata.ts),
// never from the blobs, so a study's metadata costs one query.
//
// Representations (PS3.18 Table 10.4.1-2, 8.7.3.3):
// - application/dicom+json, the default: one JSON array of every instance (keys sorted, F.2.1);
// - multipart/related; type="application/dicom+xml": one part per instance (PS3.19 Native DICOM Model).
// OHIF's Accept lists JSON together with multipart types this resource does not offer: those entries are
// ignored (negotiate.ts) and JSON is chosen, never 406 (PROTOCOL.md 2, 3.3).
//
// The body is built in memory (it is the size of the study's headers, not its pixels), which gives:
// - ETag: SHA-256 of the identity body (http/etag.ts), If-None-Match -> 304 without a body (RFC 9110 13.1.2);
// - Content-Encoding br or gzip per Accept-Encoding above 1 KiB (http/content-coding.ts), Vary: Accept-Encoding.

import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import { firstString, type DicomJsonDataset } from '../../dicom/json-model.js';
import { stringifyDicomJson } from '../../dicom/json-serialize.js';
import { toNativeDicomXml } from '../../dicom/xml-model.js';
import type { IndexStore } from '../../index/index-store.js';
import { retrieveMetadata } from '../../services/retrieve-metadata.js';
import { chooseContentCoding, encodeBody, MIN_COMPRESSIBLE_BYTES } from '../content-coding.js';
import { ifNoneMatchHits, strongEtag } from '../etag.js';
import { MediaType } from '../media-types.js';
import { multipartBody, multipartContentType } from '../multipart-writer.js';
import { negotiate, type Offer } from '../negotiate.js';
import { auditStudy } from '../plugins/audit-trail.js';
import type { PermittedStudyOptions } from '../../services/permitted-study.js';
import { retrieveScope } from '../route-paths.js';
import { urlsFor, type UrlSettings } from '../request-urls.js';

/** isPurged: a purged scope answers 410 Gone (issue 6). */
export interface MetadataRouteOptions extends PermittedStudyOptions {
  index: IndexStore;
  urls: UrlSettings;
}

type Params = { study: string; series?: string; instance?: string };

const JSON_OFFER: Offer = { mediaType: MediaType.DICOM_JSON };
const XML_MULTIPART_OFFER: Offer = { mediaType: MediaType.MULTIPART_RELATED, type: MediaType.DICOM_XML };

function acceptQuery(request: FastifyRequest): string | string[] | undefined {
  return (request.query as Record<string, string | string[] | undefined> | undefined)?.accept;
}

interface Body {
  contentType: string;
  bytes: Buffer;
}

/** The JSON representation: one array, keys sorted (F.2.1, stringifyDicomJson). */
function jsonBody(datasets: DicomJsonDataset[]): Body {
  return { contentType: MediaType.DICOM_JSON, bytes: Buffer.from(stringifyDicomJson(datasets), 'utf8') };
}

/**
 * The XML representation, one part per instance (PS3.18 8.7.3.3.2). The boundary is derived from the parts'
 * content instead of random, so equal metadata is an equal body and the ETag stays stable across requests.
 */
async function xmlBody(datasets: DicomJsonDataset[]): Promise<Body> {
  const parts = datasets.map((ds) => Buffer.from(toNativeDicomXml(ds), 'utf8'));
  const digest = createHash('sha256');
  for (const p of parts) digest.update(p);
  const boundary = `dicomvault-${digest.digest('hex').slice(0, 32)}`;
  const chunks: Buffer[] = [];
  const partsOut = parts.map((body) => ({ contentType: `${MediaType.DICOM_XML}; charset=utf-8`, body }));
  for await (const chunk of multipartBody(partsOut, boundary)) chunks.push(chunk);
  return { contentType: multipartContentType(MediaType.DICOM_XML, boundary), bytes: Buffer.concat(chunks) };
}

function appendVary(reply: FastifyReply, value: string): void {
  const current = reply.getHeader('vary');
  const list = current === undefined ? [] : String(current).split(',').map((s) => s.trim()).filter(Boolean);
  if (!list.some((v) => v.toLowerCase() === value.toLowerCase())) reply.header('vary', [...list, value].join(', '));
}

export async function metadataRoutes(app: FastifyInstance, options: MetadataRouteOptions): Promise<void> {
  const handler = async (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
    const { params } = request;
    // Path UIDs are checked before any lookup (route-paths.ts): 400, never an index probe.
    const scope = retrieveScope(params);
    request.audit.event('retrieve');

    const chosen = negotiate(request.headers.accept, acceptQuery(request), [JSON_OFFER, XML_MULTIPART_OFFER]);
    if (!chosen) {
      throw new AppError('NOT_ACCEPTABLE', 'acceptable representations: application/dicom+json, multipart/related; type="application/dicom+xml"');
    }
    const datasets = retrieveMetadata(options.index, request.access, scope, urlsFor(request, options.urls), options);
    auditStudy(request, options.index, scope.studyInstanceUID, datasets.flatMap((ds) => firstString(ds, '00080016') ?? []));
    const body = chosen.offer === JSON_OFFER ? jsonBody(datasets) : await xmlBody(datasets);

    // The representation depends on both negotiations (RFC 9110 12.5.5).
    appendVary(reply, 'Accept');
    appendVary(reply, 'Accept-Encoding');
    const coding = body.bytes.length >= MIN_COMPRESSIBLE_BYTES ? chooseContentCoding(request.headers['accept-encoding']) : undefined;
    const etag = strongEtag(body.bytes, coding);
    reply.header('etag', etag);
    if (ifNoneMatchHits(request.headers['if-none-match'], etag)) return reply.code(304).send();

    reply.type(body.contentType);
    if (coding === undefined) return reply.send(body.bytes);
    return reply.header('content-encoding', coding).send(await encodeBody(body.bytes, coding));
  };
  app.get('/studies/:study/metadata', handler);
  app.get('/studies/:study/series/:series/metadata', handler);
  app.get('/studies/:study/series/:series/instances/:instance/metadata', handler);
}
