// Sending datasets in the DICOM JSON Model (PS3.18 F) or the Native DICOM Model XML (PS3.19), the two
// representations QIDO-RS and the STOW-RS response offer (PS3.18 8.7.3).

import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';
import type { DicomJsonDataset } from '../dicom/json-model.js';
import { stringifyDicomJson } from '../dicom/json-serialize.js';
import { toNativeDicomXml } from '../dicom/xml-model.js';
import { negotiate, type Offer } from './negotiate.js';
import { multipartResponse } from './multipart-writer.js';

export type DatasetRepresentation = 'json' | 'xml';

const JSON_OFFER: Offer = { mediaType: 'application/dicom+json' };
const XML_MULTIPART_OFFER: Offer = { mediaType: 'multipart/related', type: 'application/dicom+xml' };
const XML_OFFER: Offer = { mediaType: 'application/dicom+xml' };

function acceptQuery(request: FastifyRequest): string | string[] | undefined {
  return (request.query as Record<string, string | string[] | undefined> | undefined)?.accept;
}

/**
 * JSON is the default (missing Accept, *\/*, or a list that contains it); XML as multipart/related with
 * type application/dicom+xml (one part per dataset), or plain application/dicom+xml for a single dataset.
 */
export function negotiateDatasetResponse(request: FastifyRequest): DatasetRepresentation {
  const chosen = negotiate(request.headers.accept, acceptQuery(request), [JSON_OFFER, XML_MULTIPART_OFFER, XML_OFFER]);
  if (!chosen) {
    throw new AppError('NOT_ACCEPTABLE', 'acceptable representations: application/dicom+json, multipart/related; type="application/dicom+xml"');
  }
  return chosen.offer === JSON_OFFER ? 'json' : 'xml';
}

export function sendDatasets(
  reply: FastifyReply,
  representation: DatasetRepresentation,
  datasets: DicomJsonDataset[],
  { single = false }: { single?: boolean } = {},
): FastifyReply {
  if (representation === 'json') {
    return reply.type('application/dicom+json').send(stringifyDicomJson(single ? datasets[0]! : datasets));
  }
  if (single) return reply.type('application/dicom+xml; charset=utf-8').send(toNativeDicomXml(datasets[0]!));
  const { contentType, stream } = multipartResponse(
    'application/dicom+xml',
    datasets.map((ds) => ({ contentType: 'application/dicom+xml; charset=utf-8', body: Buffer.from(toNativeDicomXml(ds), 'utf8') })),
  );
  return reply.type(contentType).send(stream);
}
