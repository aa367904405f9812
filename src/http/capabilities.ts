// Retrieve Capabilities (PS3.18 8.9): a description of the service, built from the route table the server actually
// registered (routes/capabilities.ts collects it), never from a hand-written list of resources. What Fastify's
// routes cannot say (which PS3.18 transaction a method is, its media types and query parameters) comes from
// KNOWN below, keyed by method and path: a route without an entry is still described, by its method alone, and
// test/conformance/conformance-doc.test.ts fails until it gets one, so the description cannot fall behind.
//
// Two serialisations of one model: WADL (PS3.18 8.9 and Annex H: application/vnd.sun.wadl+xml, the default) and
// JSON (the same model, for clients that prefer it). Pure: no HTTP, no Fastify.

import { TRANSFER_SYNTAXES } from '../dicom/transfer-syntax.js';
import { formatMediaType, MediaType } from './media-types.js';

/** One route of the table: the method and the Fastify URL relative to the base path (`/studies/:study`). */
export interface RouteEntry {
  method: string;
  url: string;
}

export interface MethodDescription {
  method: string;
  /** The transaction this method performs: a PS3.18 name, or this server's own for its extensions. */
  transaction?: string;
  /** Where it is specified (`PS3.18 10.6`), or where this server documents it. */
  reference?: string;
  /** Media types of the response body, the default first; empty: no body (204) or none known. */
  produces: string[];
  /** Media types of the request body. */
  consumes: string[];
  /** Query parameters understood; `{attributeID}` stands for any QIDO matching attribute (PS3.18 8.3.4). */
  query: string[];
}

export interface ResourceDescription {
  /** URI template relative to the base: `/studies/{study}`; `/` is the base itself. */
  path: string;
  /** Template parameter names, in path order. */
  parameters: string[];
  methods: MethodDescription[];
  /** The Allow header value's methods (RFC 9110 10.2.1): HEAD wherever GET is (Fastify answers it), OPTIONS everywhere. */
  allow: string[];
}

export interface ServiceDescription {
  /** Absolute base URL of the service, without a trailing slash. */
  base: string;
  resources: ResourceDescription[];
}

/** `/studies/:study/bulk/*` -> `/studies/{study}/bulk/{path}`: the URI template form used in every description. */
export function templatePath(url: string): string {
  const path = url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, '{path}');
  return path === '' ? '/' : path;
}

const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'];
const byMethodOrder = (a: string, b: string) => METHOD_ORDER.indexOf(a) - METHOD_ORDER.indexOf(b) || a.localeCompare(b);

const multipart = (type: string) => formatMediaType(MediaType.MULTIPART_RELATED, { type });

type Known = Omit<MethodDescription, 'method' | 'produces' | 'consumes' | 'query'> & Partial<Pick<MethodDescription, 'produces' | 'consumes' | 'query'>>;

// --- What each route offers; the route files are the truth (cited per entry) and these lists repeat them. ---

/** QIDO-RS responses (http/dataset-response.ts): JSON default, XML one part per dataset. */
const DATASETS = [MediaType.DICOM_JSON, multipart(MediaType.DICOM_XML)];
/** STOW-RS response (routes/stow-rs.ts): one dataset, so XML is single-part. */
const STORE_RESPONSE = [MediaType.DICOM_JSON, MediaType.DICOM_XML];
/** Frames (routes/frames-rs.ts): one media type per transfer syntax family (Table 8.7.3-2). */
const FRAME_TYPES = [...new Set([MediaType.OCTET_STREAM as string, ...TRANSFER_SYNTAXES.map((ts) => ts.frameMediaType)])].map(multipart);
const QIDO_QUERY = ['{attributeID}', 'includefield', 'fuzzymatching', 'limit', 'offset', 'accept'];

const levels = (suffix: string) => ['/studies/{study}', '/studies/{study}/series/{series}', '/studies/{study}/series/{series}/instances/{instance}'].map((p) => p + suffix);

const KNOWN = new Map<string, Known>();
function known(method: string, paths: string[], description: Known): void {
  for (const path of paths) KNOWN.set(`${method} ${path}`, description);
}

known('OPTIONS', ['/'], { transaction: 'Retrieve Capabilities', reference: 'PS3.18 8.9', produces: [MediaType.WADL, MediaType.JSON] });
known('GET', ['/studies'], { transaction: 'Search for Studies', reference: 'PS3.18 10.6', produces: DATASETS, query: QIDO_QUERY });
known('GET', ['/series', '/studies/{study}/series'], { transaction: 'Search for Series', reference: 'PS3.18 10.6', produces: DATASETS, query: QIDO_QUERY });
known('GET', ['/instances', '/studies/{study}/instances', '/studies/{study}/series/{series}/instances'], {
  transaction: 'Search for Instances',
  reference: 'PS3.18 10.6',
  produces: DATASETS,
  query: QIDO_QUERY,
});
known('POST', ['/studies', '/studies/{study}'], {
  transaction: 'Store Instances',
  reference: 'PS3.18 10.5',
  produces: STORE_RESPONSE,
  consumes: [multipart(MediaType.DICOM), MediaType.DICOM],
});
known('GET', levels('').slice(0, 2), { transaction: 'Retrieve Instances', reference: 'PS3.18 10.4', produces: [multipart(MediaType.DICOM)], query: ['accept'] });
known('GET', levels('').slice(2), {
  transaction: 'Retrieve Instances',
  reference: 'PS3.18 10.4',
  produces: [multipart(MediaType.DICOM), MediaType.DICOM],
  query: ['accept'],
});
known('GET', levels('/metadata'), { transaction: 'Retrieve Metadata', reference: 'PS3.18 10.4', produces: [MediaType.DICOM_JSON, multipart(MediaType.DICOM_XML)], query: ['accept'] });
known('GET', ['/studies/{study}/series/{series}/instances/{instance}/frames/{frames}'], {
  transaction: 'Retrieve Frames',
  reference: 'PS3.18 10.4',
  produces: FRAME_TYPES,
  query: ['accept'],
});
known('GET', ['/studies/{study}/series/{series}/instances/{instance}/bulk/{path}'], {
  transaction: 'Retrieve Bulkdata',
  reference: 'PS3.18 10.4',
  produces: [MediaType.OCTET_STREAM, multipart(MediaType.OCTET_STREAM)],
  query: ['accept'],
});
/** Rendered and thumbnail resources (routes/rendered-rs.ts): rendered media types (PS3.18 8.7.4). */
const RENDERED_IMAGES = [MediaType.JPEG, MediaType.PNG, MediaType.GIF];
const RENDER_QUERY = ['quality', 'viewport', 'window', 'accept'];
known('GET', levels('/rendered').slice(0, 2), {
  transaction: 'Retrieve Rendered',
  reference: 'PS3.18 10.4',
  produces: RENDERED_IMAGES.map(multipart),
  query: RENDER_QUERY,
});
known('GET', levels('/rendered').slice(2), { transaction: 'Retrieve Rendered', reference: 'PS3.18 10.4', produces: [...RENDERED_IMAGES, MediaType.PDF], query: RENDER_QUERY });
known('GET', ['/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered'], {
  transaction: 'Retrieve Rendered',
  reference: 'PS3.18 10.4',
  produces: RENDERED_IMAGES,
  query: RENDER_QUERY,
});
known('GET', [...levels('/thumbnail'), '/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/thumbnail'], {
  transaction: 'Retrieve Thumbnail',
  reference: 'PS3.18 10.4',
  produces: [MediaType.JPEG],
  query: ['viewport', 'accept'],
});
known('GET', ['/wado'], {
  transaction: 'Retrieve DICOM Instance (WADO-URI)',
  reference: 'PS3.18 9',
  produces: [MediaType.JPEG, MediaType.DICOM, MediaType.PNG, MediaType.GIF, MediaType.PDF],
  query: [
    'requestType',
    'studyUID',
    'seriesUID',
    'objectUID',
    'contentType',
    'transferSyntax',
    'frameNumber',
    'rows',
    'columns',
    'region',
    'windowCenter',
    'windowWidth',
    'imageQuality',
  ],
});
// Extensions (conformance/CONFORMANCE.md section 9): not PS3.18 transactions.
known('DELETE', levels(''), { transaction: 'Delete (to the bin)', reference: 'docs/retention.md' });
known('POST', ['/studies/{study}/reject/{code}', '/studies/{study}/series/{series}/reject/{code}'], { transaction: 'Reject (IOCM, dcm4chee style)', reference: 'docs/retention.md' });
const adminJson = (transaction: string, extra: Partial<Known> = {}): Known => ({ transaction, reference: 'admin API', produces: [MediaType.JSON], ...extra });
known('GET', ['/admin/principals'], adminJson('List principals'));
known('GET', ['/admin/policies'], adminJson('Read policies', { produces: [MediaType.PLAIN] }));
known('PUT', ['/admin/policies'], adminJson('Replace policies', { consumes: [MediaType.PLAIN] }));
known('POST', ['/admin/policies/validate'], adminJson('Validate policies', { consumes: [MediaType.PLAIN] }));
known('POST', ['/admin/policies/reload'], adminJson('Reload policies'));
known('POST', ['/admin/policies/decide'], adminJson('Dry-run a decision', { consumes: [MediaType.JSON] }));
known('PUT', ['/admin/studies/{study}/labels'], adminJson('Set study labels', { consumes: [MediaType.JSON] }));
known('PUT', ['/admin/studies/{study}/confidentiality'], adminJson('Set study confidentiality', { consumes: [MediaType.JSON] }));
known('GET', ['/admin/studies/{study}/retention'], adminJson('Read retention'));
known('PUT', ['/admin/studies/{study}/retention'], adminJson('Extend retention', { consumes: [MediaType.JSON] }));
known('GET', ['/admin/holds'], adminJson('List legal holds', { query: ['scope', 'target', 'includeLifted'] }));
known('POST', ['/admin/holds'], adminJson('Place a legal hold', { consumes: [MediaType.JSON] }));
known('POST', ['/admin/holds/{id}/lift'], adminJson('Lift a legal hold', { consumes: [MediaType.JSON] }));
known('GET', ['/admin/bin'], adminJson('List the bin', { query: ['limit'] }));
known('POST', levels('/restore').map((p) => `/admin${p}`), adminJson('Restore from the bin'));
const shareJson = (transaction: string, extra: Partial<Known> = {}): Known => ({ transaction, reference: 'share links', produces: [MediaType.JSON], ...extra });
known('POST', ['/shares'], shareJson('Create a share link', { consumes: [MediaType.JSON] }));
known('GET', ['/shares'], shareJson('List share links'));
known('GET', ['/shares/{id}'], shareJson('Read a share link'));
known('DELETE', ['/shares/{id}'], shareJson('Revoke a share link', { produces: [] }));
known('GET', ['/share/{token}'], shareJson('Share link landing page', { produces: [MediaType.HTML] }));
known('POST', ['/share/{token}'], shareJson('Open a share link', { consumes: ['application/x-www-form-urlencoded', MediaType.JSON] }));

/** True when KNOWN describes this method on this templated path (the conformance test requires it of every route). */
export const isKnownMethod = (method: string, path: string): boolean => KNOWN.has(`${method} ${path}`);

function describeMethod(method: string, path: string): MethodDescription {
  // Every resource's OPTIONS is the Retrieve Capabilities transaction, for that resource.
  const k = KNOWN.get(`${method} ${method === 'OPTIONS' ? '/' : path}`);
  return { method, ...k, produces: k?.produces ?? [], consumes: k?.consumes ?? [], query: k?.query ?? [] };
}

/**
 * The description of every resource of `routes` (HEAD and OPTIONS routes are implied, not listed), plus the base
 * itself. Every resource has OPTIONS: routes/capabilities.ts registers it on each path.
 */
export function describeService(routes: readonly RouteEntry[], base: string): ServiceDescription {
  const methodsByPath = new Map<string, Set<string>>([['/', new Set()]]);
  for (const r of routes) {
    const path = templatePath(r.url);
    const set = methodsByPath.get(path) ?? new Set<string>();
    set.add(r.method);
    methodsByPath.set(path, set);
  }
  const resources = [...methodsByPath.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([path, set]): ResourceDescription => {
      const methods = [...set, 'OPTIONS'].sort(byMethodOrder);
      const allow = set.has('GET') ? [...methods, 'HEAD'].sort(byMethodOrder) : methods;
      const parameters = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
      return { path, parameters, methods: methods.map((m) => describeMethod(m, path)), allow };
    });
  return { base: base.replace(/\/+$/, ''), resources };
}

/** The description restricted to one resource (OPTIONS on a resource path describes that resource). */
export function describeResource(service: ServiceDescription, path: string): ServiceDescription {
  return { base: service.base, resources: service.resources.filter((r) => r.path === path) };
}

// --- Serialisations ---

const WADL_NS = 'http://wadl.dev.java.net/2009/02';

const escapeXml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function wadlMethod(m: MethodDescription, indent: string): string[] {
  const out = [`${indent}<method name="${m.method}">`];
  if (m.transaction) out.push(`${indent}  <doc title="${escapeXml(m.transaction)}">${escapeXml(m.reference ?? '')}</doc>`);
  if (m.query.length > 0 || m.consumes.length > 0) {
    out.push(`${indent}  <request>`);
    for (const q of m.query) out.push(`${indent}    <param name="${escapeXml(q)}" style="query" type="xsd:string"/>`);
    for (const t of m.consumes) out.push(`${indent}    <representation mediaType="${escapeXml(t)}"/>`);
    out.push(`${indent}  </request>`);
  }
  if (m.produces.length > 0) {
    out.push(`${indent}  <response>`);
    for (const t of m.produces) out.push(`${indent}    <representation mediaType="${escapeXml(t)}"/>`);
    out.push(`${indent}  </response>`);
  }
  out.push(`${indent}</method>`);
  return out;
}

/**
 * WADL (https://www.w3.org/submissions/wadl/, the application/vnd.sun.wadl+xml of PS3.18 8.9): one flat
 * `resource` per path, its path relative to `resources/@base` (the base itself is path ""), template parameters
 * declared, each method with its query parameters and request and response representations.
 */
export function toWadl(service: ServiceDescription): string {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', `<application xmlns="${WADL_NS}" xmlns:xsd="http://www.w3.org/2001/XMLSchema">`];
  lines.push(`  <resources base="${escapeXml(service.base)}/">`);
  for (const r of service.resources) {
    lines.push(`    <resource path="${escapeXml(r.path.slice(1))}">`);
    for (const p of r.parameters) lines.push(`      <param name="${escapeXml(p)}" style="template" type="xsd:string" required="true"/>`);
    for (const m of r.methods) lines.push(...wadlMethod(m, '      '));
    lines.push('    </resource>');
  }
  lines.push('  </resources>', '</application>', '');
  return lines.join('\n');
}

/** The same model as JSON (no standard schema exists for it; the field names are those of the model above). */
export function toJson(service: ServiceDescription): string {
  return JSON.stringify(service);
}
