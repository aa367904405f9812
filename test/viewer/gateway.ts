// A same-origin gateway as a hospital deploys one in front of the archive for a browser viewer (INTEROP.md,
// "OHIF viewer 3.x in headless Chromium"): browsers do not easily present client certificates, so this plain
// HTTP loopback server
//   - serves the OHIF production build (npm @ohif/app dist/) with COOP/COEP (OHIF needs SharedArrayBuffer),
//     and a generated app-config.js whose one DICOMweb data source is this gateway's own /dicomweb;
//   - forwards /dicomweb/* to the archive over mutual TLS with a client certificate, streaming both bodies,
//     and says with RFC 7239 `Forwarded` (and X-Forwarded-*) which origin the browser used, so the archive's
//     RetrieveURL and BulkDataURI values point back here (the archive believes it only from
//     server.trustedProxies).
// A second mode (`upstream: 'web'`, for ohif-access.viewer.ts) forwards to the archive's web listener instead
// (issue 5: TLS without client certificates): the gateway presents no certificate, verifies the listener's
// server certificate with the given CA, and forwards the browser's own credentials, the `Authorization` header
// (OIDC bearer token) and the share-link session cookie `__Host-dv-share` (no other cookie), plus
// `Sec-Fetch-Site` so the archive's cross-site check on the link exchange sees what the browser said; it passes
// back `Set-Cookie` and `WWW-Authenticate` with the other end-to-end response headers.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { ClientTls } from '../helpers/https-client.js';

export interface GatewayOptions {
  /** The OHIF dist/ folder. */
  ohifDist: string;
  /** The archive's DICOMweb base URL, e.g. https://127.0.0.1:8443/dicomweb */
  archive: string;
  /**
   * 'mtls' (default): the archive's mutual-TLS listener, with the client certificate in `tls`; the browser's
   * credentials stay here. 'web': the archive's web listener, no client certificate (`tls.cert`/`key` unused);
   * the browser's bearer token and share-session cookie are forwarded.
   */
  upstream?: 'mtls' | 'web';
  /**
   * Read at the first forwarded request, not before: a gateway started before the archive (whose configuration
   * names the gateway) can be given the archive's CA once the archive has made it.
   */
  tls: ClientTls;
  log: Logger;
}

export interface Gateway {
  /** http://127.0.0.1:<port> */
  origin: string;
  close(): Promise<void>;
}

/** Request headers the archive needs from the browser; everything else (cookies, Origin, ...) stays here. */
const FORWARD_REQUEST = ['accept', 'accept-encoding', 'range', 'if-none-match', 'content-type', 'content-length'];
/** Upstream 'web': the browser's own credentials and the Fetch Metadata header the link exchange checks. */
const FORWARD_REQUEST_WEB = [...FORWARD_REQUEST, 'authorization', 'sec-fetch-site'];
/** The only cookie the archive's web listener reads (src/http/plugins/authenticate.ts SHARE_SESSION_COOKIE). */
const SHARE_COOKIE = '__Host-dv-share';
/** Hop-by-hop headers (RFC 9110 7.6.1) are this connection's business, not the next one's. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

const MEDIA_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm', // WebAssembly.instantiateStreaming insists on it
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/** OHIF's data source for this archive (OHIF's own config/local_orthanc.js is the model). */
export function appConfig(origin: string): string {
  const root = `${origin}/dicomweb`;
  const config = {
    routerBasename: '/',
    extensions: [],
    modes: [],
    showStudyList: true,
    maxNumberOfWebWorkers: 2,
    showWarningMessageForCrossOrigin: false,
    showCPUFallbackMessage: false,
    showLoadingIndicator: true,
    strictZSpacingForVolumeViewport: true,
    defaultDataSourceName: 'dicomvault',
    dataSources: [
      {
        namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
        sourceName: 'dicomvault',
        configuration: {
          friendlyName: 'dicomvault through the test gateway',
          name: 'dicomvault',
          qidoRoot: root,
          wadoRoot: root,
          wadoUriRoot: root,
          qidoSupportsIncludeField: true,
          supportsReject: false,
          imageRendering: 'wadors',
          thumbnailRendering: 'wadors',
          enableStudyLazyLoad: true,
          supportsFuzzyMatching: false,
          supportsWildcard: true,
          staticWado: false,
          singlepart: 'bulkdata,video',
          omitQuotationForMultipartRequest: true,
          bulkDataURI: { enabled: true },
        },
      },
    ],
  };
  return `window.config = ${JSON.stringify(config, null, 2)};\n`;
}

export async function startGateway(o: GatewayOptions): Promise<Gateway> {
  const archive = new URL(o.archive);
  const web = o.upstream === 'web';
  let agent: https.Agent | undefined;
  const agentNow = (): https.Agent =>
    (agent ??= new https.Agent({ keepAlive: true, maxSockets: 16, ca: o.tls.ca, ...(web ? {} : { cert: o.tls.cert, key: o.tls.key }) }));
  const forwardRequest = web ? FORWARD_REQUEST_WEB : FORWARD_REQUEST;
  const dist = path.resolve(o.ohifDist);
  let origin = '';

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://gateway.invalid');
    // Every page and resource: OHIF needs cross-origin isolation (SharedArrayBuffer for its image decoders).
    res.setHeader('cross-origin-opener-policy', 'same-origin');
    res.setHeader('cross-origin-embedder-policy', 'require-corp');
    if (url.pathname === '/dicomweb' || url.pathname.startsWith('/dicomweb/')) {
      forward(req, res, url);
    } else if (req.method === 'GET' || req.method === 'HEAD') {
      serveStatic(req, res, url.pathname);
    } else {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    }
  });

  function forward(req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
    const headers: Record<string, string> = {};
    for (const name of forwardRequest) {
      const v = req.headers[name];
      if (typeof v === 'string') headers[name] = v;
    }
    if (web) {
      const cookie = shareCookie(req.headers.cookie);
      if (cookie !== undefined) headers['cookie'] = cookie;
    }
    const host = req.headers.host ?? new URL(origin).host;
    headers['forwarded'] = `for=${forNode(req.socket.remoteAddress)};proto=http;host="${host}"`;
    headers['x-forwarded-proto'] = 'http';
    headers['x-forwarded-host'] = host;
    const target = new URL(archive.pathname.replace(/\/$/, '') + url.pathname.slice('/dicomweb'.length) + url.search, archive);
    const upstream = https.request(target, { method: req.method, headers, agent: agentNow() }, (answer) => {
      const status = answer.statusCode ?? 502;
      o.log.debug({ method: req.method, path: url.pathname, status }, 'forwarded');
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(answer.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(status, out);
      pipeline(answer, res).catch((err: unknown) => o.log.debug({ err, path: url.pathname }, 'response stream ended early'));
    });
    upstream.on('error', (err) => {
      o.log.warn({ err, method: req.method, path: url.pathname }, 'archive unreachable');
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end('archive unreachable\n');
      else res.destroy();
    });
    pipeline(req, upstream).catch(() => upstream.destroy());
  }

  function serveStatic(req: http.IncomingMessage, res: http.ServerResponse, pathname: string): void {
    if (pathname === '/app-config.js') {
      res.writeHead(200, { 'content-type': MEDIA_TYPES['.js']!, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : appConfig(origin));
      return;
    }
    let file: string;
    try {
      file = path.join(dist, path.normalize(decodeURIComponent(pathname)));
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (file !== dist && !file.startsWith(dist + path.sep)) {
      res.writeHead(404).end();
      return;
    }
    const stat = fs.statSync(file, { throwIfNoEntry: false });
    // OHIF is a single-page app: /viewer, /viewer/..., /?... all answer index.html (its serve.json says the same).
    if (!stat?.isFile()) {
      if (path.extname(pathname) !== '') {
        res.writeHead(404).end();
        return;
      }
      file = path.join(dist, 'index.html');
    }
    res.writeHead(200, { 'content-type': MEDIA_TYPES[path.extname(file)] ?? 'application/octet-stream' });
    if (req.method === 'HEAD') res.end();
    else fs.createReadStream(file).pipe(res);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent?.destroy();
    },
  };
}

/** The share-session cookie pair(s) of a Cookie header (RFC 6265 5.4), nothing else; undefined when absent. */
function shareCookie(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const pairs = header
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p.slice(0, p.indexOf('=')) === SHARE_COOKIE);
  return pairs.length > 0 ? pairs.join('; ') : undefined;
}

/** RFC 7239 6: an IPv6 node is quoted and bracketed. */
function forNode(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return address.includes(':') ? `"[${address}]"` : address;
}
