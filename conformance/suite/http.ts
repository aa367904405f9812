// The suite's only way to reach a server: plain HTTP(S) with an optional client certificate (node:https), so
// it runs against any DICOMweb origin server, not only this project's.
import http from 'node:http';
import https from 'node:https';

export interface ClientTls {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The request URL, to resolve relative URIs in the answer against. */
  url: string;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: Buffer | string;
}

/** Requests relative to a base URL (the service root, e.g. https://host:8443/dicomweb), on one keep-alive agent. */
export class HttpClient {
  readonly base: string;
  private readonly agent: http.Agent;

  constructor(base: string, tls: ClientTls = {}) {
    this.base = base.replace(/\/+$/, '');
    this.agent = this.base.startsWith('https:') ? new https.Agent({ ...tls, keepAlive: true, maxSockets: 8 }) : new http.Agent({ keepAlive: true, maxSockets: 8 });
  }

  /** `path` starting with "/" is appended to the base; an absolute http(s) URL is used as is. */
  url(path: string): string {
    return /^https?:\/\//i.test(path) ? path : `${this.base}${path}`;
  }

  request(method: string, path: string, options: RequestOptions = {}): Promise<HttpResponse> {
    const url = this.url(path);
    const lib = url.startsWith('https:') ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(url, { method, headers: options.headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), url }));
        res.on('error', reject);
      });
      req.setTimeout(60_000, () => req.destroy(new Error(`${method} ${url}: no answer in 60 s`)));
      req.on('error', reject);
      req.end(options.body);
    });
  }

  get(path: string, headers: Record<string, string> = {}): Promise<HttpResponse> {
    return this.request('GET', path, { headers });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The essence (type/subtype, lowercase) of a Content-Type header. */
export function essence(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

/** The parameters of a Content-Type header (names lowercase, values unquoted; RFC 9110 5.6.6 quoted-strings). */
export function mediaParams(contentType: string | undefined): Record<string, string> {
  const params: Record<string, string> = {};
  const text = contentType ?? '';
  const re = /;\s*([^=;\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    params[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!.trim();
  }
  return params;
}

/** One media-type parameter (`boundary`, `type`, `transfer-syntax`), unquoted; undefined when absent. */
export const mediaParam = (contentType: string | undefined, name: string): string | undefined => mediaParams(contentType)[name];
