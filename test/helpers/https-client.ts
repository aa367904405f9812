// A plain node:https client with a client certificate: what curl or a gateway does on the wire.
import https from 'node:https';

export interface ClientTls {
  ca: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export function request(url: string, tls: ClientTls, options: { method?: string; headers?: Record<string, string>; body?: Buffer; minVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2'; maxVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3' } = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: options.method ?? 'GET',
        headers: options.headers,
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        agent: false,
        minVersion: options.minVersion,
        maxVersion: options.maxVersion,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
