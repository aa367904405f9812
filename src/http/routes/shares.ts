// Share links over HTTP (issue 5 item 5, SECURITY.md 3 "Our share links"); the rules are in policy/share-links.ts.
//
// Managing links (authenticated, any listener, under the base path):
//   POST   /shares      JSON {studyInstanceUID, scope, expiresInHours?, maxUses?, secondFactor?, note?} -> 201 (the token, once)
//   GET    /shares      the caller's links (all of them for admins)
//   GET    /shares/:id  one link
//   DELETE /shares/:id  revoke: 204; its sessions end
// Using a link (web listener only, `landing: true`; public: no authentication):
//   GET  /share/:token  a small HTML page with a form; looks nothing up and consumes no use (mail and chat link
//                       previewers fetch GETs)
//   POST /share/:token  form or JSON {secondFactor?} -> Set-Cookie (the session) and 303 to shares.viewerUrl, or
//                       200 JSON without one; any refusal -> 401 with one generic message
// The token is in the landing page's URL only: image requests carry the HttpOnly cookie, so the token never
// reaches viewer URLs, the viewer's history or Referer headers (Referrer-Policy: no-referrer as well).

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Config } from '../../config/schema.js';
import { AppError } from '../../errors.js';
import { parseBody } from '../request-body.js';
import type { IndexStore } from '../../index/index-store.js';
import type { Access } from '../../policy/access.js';
import { auditStudy } from '../plugins/audit-trail.js';
import { SHARE_SESSION_COOKIE } from '../plugins/authenticate.js';
import { MAX_NOTE_LENGTH, MAX_SECOND_FACTOR_LENGTH, type ShareLinks, type ShareView } from '../../policy/share-links.js';

/** Bodies of the link endpoints are tiny; anything bigger is not a link exchange or creation. */
const BODY_LIMIT = 4 * 1024;
const GENERIC_REFUSAL = 'This link cannot be opened. It may have expired or been revoked, or the answer was not right.';
const SHARE_ID_SHAPE = /^[A-Za-z0-9_-]{1,64}$/;
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{1,128}$/;

export interface ShareRouteOptions {
  shares: ShareLinks;
  /** The Access of the request's principal (the lead's wiring: policy engine + request.principal). */
  accessOf: (request: FastifyRequest) => Access;
  /** Absolute base URL of the web listener including the base path (webBaseUrl(config)); links are `<it>/share/<token>`. */
  webBaseUrl: string;
  /** The base path the plugin is registered under: the cookie's Path when its name has no __Host- prefix. */
  basePath: string;
  /** Register the recipient's endpoints (GET/POST /share/:token): on the web listener only. */
  landing?: boolean;
  /** config.shares.viewerUrl */
  viewerUrl?: string;
  /** The study's patient and accession for the audit record of a link's creation (export). */
  index: Pick<IndexStore, 'studyAttributes'>;
  /** The cookie name (default plugins/authenticate.ts SHARE_SESSION_COOKIE, a __Host- name: then Path=/). */
  cookieName?: string;
}

/** The web listener's public base URL: web.publicUrl, else from its host and port, plus the base path. */
export function webBaseUrl(config: Config): string {
  if (config.web.publicUrl) return config.web.publicUrl.replace(/\/+$/, '');
  const host = config.web.host.includes(':') ? `[${config.web.host}]` : config.web.host;
  return `https://${host}:${config.web.port}${config.server.basePath}`;
}

const createBody = z.strictObject({
  studyInstanceUID: z.string().min(1).max(64),
  scope: z.enum(['view', 'download']).default('view'),
  expiresInHours: z.number().positive().optional(),
  maxUses: z.number().int().positive().nullable().optional(),
  secondFactor: z.string().min(1).max(MAX_SECOND_FACTOR_LENGTH).optional(),
  note: z.string().max(MAX_NOTE_LENGTH).optional(),
});

const exchangeBody = z
  .object({ secondFactor: z.string().max(MAX_SECOND_FACTOR_LENGTH * 2).optional() })
  .optional();


const isJson = (request: FastifyRequest): boolean => /^application\/json\s*(;|$)/i.test(request.headers['content-type'] ?? '');
const isForm = (request: FastifyRequest): boolean => /^application\/x-www-form-urlencoded\s*(;|$)/i.test(request.headers['content-type'] ?? '');

function shareJson(view: ShareView): Record<string, unknown> {
  return { ...view, createdAt: view.createdAt.toISOString(), expiresAt: view.expiresAt.toISOString(), ...(view.revokedAt ? { revokedAt: view.revokedAt.toISOString() } : {}) };
}

function shareIdParam(id: string): string {
  if (!SHARE_ID_SHAPE.test(id)) throw new AppError('NOT_FOUND', 'no such share link');
  return id;
}

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** The landing page: no script, no external resource, posts to its own URL (no action attribute: the token stays out of the HTML). */
function landingPage(message?: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>Shared study</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5}label,input,button{display:block;margin:.5rem 0}input{padding:.4rem;width:100%;box-sizing:border-box}button{padding:.5rem 1.2rem}.error{color:#a00}</style>
</head>
<body>
<h1>Shared study</h1>
${message ? `<p class="error" role="alert">${escapeHtml(message)}</p>\n` : ''}<p>Someone shared imaging with you. Open it with the button below. If you were given a second piece of information with the link (for example the patient's date of birth), enter it first.</p>
<form method="post">
<label for="secondFactor">Second factor, if you were given one (dates as YYYY-MM-DD)</label>
<input id="secondFactor" name="secondFactor" type="password" autocomplete="off" maxlength="${MAX_SECOND_FACTOR_LENGTH}">
<button type="submit">Open</button>
</form>
</body>
</html>
`;
}

function viewerLocation(template: string, studyInstanceUID: string): string {
  return template.replaceAll('{StudyInstanceUID}', encodeURIComponent(studyInstanceUID));
}

export async function shareRoutes(app: FastifyInstance, options: ShareRouteOptions): Promise<void> {
  const { shares } = options;
  const cookieName = options.cookieName ?? SHARE_SESSION_COOKIE;
  // RFC 6265bis 4.1.3.2: a __Host- cookie must have Path=/; otherwise scope it to the DICOMweb base path.
  const cookiePath = cookieName.startsWith('__Host-') ? '/' : options.basePath || '/';
  const linkBase = options.webBaseUrl.replace(/\/+$/, '');
  const viewerOrigin = options.viewerUrl ? new URL(viewerLocation(options.viewerUrl, '1.2.3')).origin : undefined;
  // CSP form-action also governs where the form's redirect may go (Chrome enforces it on the 303).
  const landingCsp = `default-src 'none'; style-src 'unsafe-inline'; form-action 'self'${viewerOrigin ? ` ${viewerOrigin}` : ''}; frame-ancestors 'none'; base-uri 'none'`;

  // Fastify 5 parses no form bodies: this parser serves this plugin's routes only (encapsulation), capped.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  const noStore = (reply: FastifyReply): FastifyReply => reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer');

  app.post('/shares', { bodyLimit: BODY_LIMIT }, async (request, reply) => {
    // JSON only: a form post is a "simple" cross-site request a page could forge (CSRF).
    // Audit: 110106 Export R, the study shared (refused creations too, with outcome 4 and no study).
    request.audit.event('export');
    if (!isJson(request)) throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'the body must be application/json');
    const input = parseBody(createBody, request.body);
    const { share, token } = await shares.create(options.accessOf(request), input, request.log);
    auditStudy(request, options.index, share.studyInstanceUID, []);
    noStore(reply).code(201);
    return { ...shareJson(share), url: `${linkBase}/share/${token}`, token };
  });

  app.get('/shares', async (request, reply) => {
    noStore(reply);
    return shares.list(options.accessOf(request)).map(shareJson);
  });

  app.get<{ Params: { id: string } }>('/shares/:id', async (request, reply) => {
    const id = shareIdParam(request.params.id);
    noStore(reply);
    return shareJson(shares.get(options.accessOf(request), id));
  });

  app.delete<{ Params: { id: string } }>('/shares/:id', async (request, reply) => {
    const id = shareIdParam(request.params.id);
    shares.revoke(options.accessOf(request), id, request.log);
    return reply.code(204).send();
  });

  if (!options.landing) return;

  const page = (reply: FastifyReply, status: number, message?: string): FastifyReply =>
    noStore(reply)
      .code(status)
      .header('content-security-policy', landingCsp)
      .header('x-frame-options', 'DENY')
      .header('x-robots-tag', 'noindex, nofollow')
      .type('text/html; charset=utf-8')
      .send(landingPage(message));

  app.get<{ Params: { token: string } }>('/share/:token', { config: { public: true } }, async (request, reply) => {
    if (!TOKEN_SHAPE.test(request.params.token)) throw new AppError('NOT_FOUND', 'no such resource');
    // Nothing is looked up: the page is the same for every token, and previewers' GETs use nothing up.
    return page(reply, 200);
  });

  app.post<{ Params: { token: string } }>('/share/:token', { config: { public: true }, bodyLimit: BODY_LIMIT }, async (request, reply) => {
    // Audit: 110114 User Authentication, Login; a refusal (401) has outcome 4 and its reason.
    request.audit.event('share-login');
    const form = isForm(request);
    if (request.body !== undefined && !form && !isJson(request)) {
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'the body must be application/x-www-form-urlencoded or application/json');
    }
    const body = parseBody(exchangeBody, request.body ?? undefined);
    // Fetch Metadata (W3C): a page of another site may not exchange a link in the user's browser (login CSRF:
    // the user would then look at the sender's study believing it is theirs). Browsers without the header pass.
    const site = request.headers['sec-fetch-site'];
    const crossSite = site === 'cross-site' || site === 'same-site';
    if (crossSite) request.log.info({ event: 'share.refused', reason: 'cross-site-request' }, 'share link refused');
    const result = crossSite ? ({ ok: false } as const) : await shares.exchange(request.params.token, body?.secondFactor, request.log);
    if (!result.ok) {
      request.audit.outcome(4, `share link refused: ${'reason' in result ? result.reason : 'cross-site-request'}`);
      if ('shareId' in result && result.shareId !== undefined) request.audit.actor(`share:${result.shareId}`);
      if (form) return page(reply, 401, GENERIC_REFUSAL);
      throw new AppError('UNAUTHENTICATED', GENERIC_REFUSAL);
    }
    request.audit.actor(`share:${result.share.id}`);
    const maxAge = Math.max(0, Math.floor((result.session.expiresAt.getTime() - result.session.createdAt.getTime()) / 1000));
    noStore(reply).header('set-cookie', `${cookieName}=${result.cookieValue}; Path=${cookiePath}; Max-Age=${maxAge}; HttpOnly; Secure; SameSite=Strict`);
    if (options.viewerUrl) return reply.code(303).header('location', viewerLocation(options.viewerUrl, result.grant.studyInstanceUID)).send();
    return { studyInstanceUID: result.grant.studyInstanceUID, scope: result.grant.scope, expiresAt: result.grant.expiresAt.toISOString() };
  });
}
