// Retrieve Capabilities (PS3.18 8.9): OPTIONS {base} describes the whole service, OPTIONS on any other resource
// path describes that resource; WADL by default (application/vnd.sun.wadl+xml), JSON when Accept prefers it
// (or the accept query parameter, PS3.18 8.3.3.1), 406 for an Accept allowing neither. Every answer has Allow
// (RFC 9110 10.2.1), ETag, and 304 for a matching If-None-Match (PS3.18 8.9).
//
// The description comes from the route table as registered: an onRoute hook collects every route, so the
// capabilities cannot list a resource the server lacks or miss one it has (http/capabilities.ts).
//
// Security: OPTIONS goes through authentication like the resource it describes: the description holds no PHI,
// but it maps the archive (admin API included) and on the mTLS listener the TLS layer demands the client
// certificate anyway. Only a path whose every route is public (the share-link landing page) has a public OPTIONS.
// Nothing is audited (no study is touched), as for the other resources that name no event. A CORS preflight
// (OPTIONS with Origin and Access-Control-Request-Method) never reaches these routes: plugins/cors.ts answers it
// in onRequest, before routing's handlers and before authentication.

import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { AppError } from '../../errors.js';
import { describeResource, describeService, templatePath, toJson, toWadl, type RouteEntry } from '../capabilities.js';
import { ifNoneMatchHits, strongEtag } from '../etag.js';
import { MediaType } from '../media-types.js';
import { negotiate, type Offer } from '../negotiate.js';
import { urlsFor, type UrlSettings } from '../request-urls.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route answers 405 for methods its path does not offer (not a resource of its own). */
    methodNotAllowed?: boolean;
  }
}

export interface CapabilitiesOptions {
  urls: UrlSettings;
}

const WADL_OFFER: Offer = { mediaType: MediaType.WADL };
const JSON_OFFER: Offer = { mediaType: MediaType.JSON };

/** Methods the table describes by implication: HEAD is Fastify's for every GET, OPTIONS is registered here. */
const IMPLIED = new Set(['HEAD', 'OPTIONS']);
/** The methods a resource without them answers with 405 (RFC 9110 15.5.6). */
const ROUTABLE = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'];

interface Collected extends RouteEntry {
  public: boolean;
}

/**
 * Collects the route table and answers OPTIONS on every path of it. Call it after every route plugin is
 * registered (last in buildApp): Fastify loads plugins in registration order, so when the OPTIONS routes are
 * made every other route exists; a route added later would have no OPTIONS, so it fails the start instead.
 */
export function registerCapabilities(app: FastifyInstance, options: CapabilitiesOptions): void {
  const { basePath } = options.urls;
  const routes: Collected[] = [];
  let sealed = false;
  /** True while this plugin adds its own routes (OPTIONS, 405): the only ones allowed once sealed. */
  let addingOwn = false;

  app.addHook('onRoute', (route: RouteOptions) => {
    if (!route.url.startsWith(basePath) || addingOwn) return;
    if (sealed) throw new Error(`${[route.method].flat().join(',')} ${route.url} was registered after the capabilities routes: register it before them (app.ts)`);
    const url = route.url.slice(basePath.length);
    for (const method of [route.method].flat()) {
      if (IMPLIED.has(method)) continue;
      routes.push({ method, url, public: route.config?.public === true });
    }
  });

  app.register(
    async (scope) => {
      sealed = true;
      const answer = (path: string) => async (request: FastifyRequest, reply: FastifyReply) => {
        const service = describeService(routes, urlsFor(request, options.urls).base);
        const description = path === '/' ? service : describeResource(service, path);
        const accept = (request.query as Record<string, string | string[] | undefined> | undefined)?.accept;
        const chosen = negotiate(request.headers.accept, accept, [WADL_OFFER, JSON_OFFER]);
        if (!chosen) throw new AppError('NOT_ACCEPTABLE', `acceptable representations: ${MediaType.WADL}, ${MediaType.JSON}`);
        const body = chosen.offer === JSON_OFFER ? toJson(description) : toWadl(description);
        const etag = strongEtag(body);
        reply.header('allow', description.resources[0]!.allow.join(', ')).header('etag', etag).header('vary', 'Accept');
        if (ifNoneMatchHits(request.headers['if-none-match'], etag)) return reply.code(304).send();
        return reply.type(`${chosen.offer.mediaType}; charset=utf-8`).send(body);
      };
      addingOwn = true;
      // Whatever body comes with a refused method (or an OPTIONS) is not read: the answer does not depend on it.
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
      const paths = new Map<string, { public: boolean; methods: Set<string> }>([['/', { public: false, methods: new Set() }]]);
      for (const r of routes) {
        const known = paths.get(r.url) ?? { public: true, methods: new Set<string>() };
        known.public &&= r.public;
        known.methods.add(r.method);
        paths.set(r.url, known);
      }
      const service = describeService(routes, basePath);
      for (const [url, { public: isPublic, methods }] of paths) {
        scope.options(url, { config: { public: isPublic } }, answer(url === '/' ? '/' : templatePath(url)));
        // RFC 9110 15.5.6 (PROTOCOL.md): a method the resource does not offer is 405 with Allow, not 404.
        const allow = describeResource(service, url === '/' ? '/' : templatePath(url)).resources[0]!.allow.join(', ');
        const unsupported = ROUTABLE.filter((m) => !methods.has(m) && !(m === 'HEAD' && methods.has('GET')));
        scope.route({
          method: unsupported,
          url,
          config: { public: isPublic, methodNotAllowed: true },
          handler: async (request, reply) => {
            reply.header('allow', allow);
            throw new AppError('METHOD_NOT_ALLOWED', `${request.method} is not offered on this resource (Allow: ${allow})`);
          },
        });
      }
      addingOwn = false;
    },
    { prefix: basePath },
  );
}
