// A real RFC 5425 collector for tests: node:tls on 127.0.0.1, octet-counted frames (RFC 5425 4.3), every
// message kept in arrival order. stop()/start() simulate an outage on the same port.

import net from 'node:net';
import tls from 'node:tls';
import { createCa, issueCertificate, type CertificateAndKey } from '../../src/security/pki.js';

export interface ReceiverPki {
  ca: CertificateAndKey;
  server: CertificateAndKey;
}

/** A CA and a collector certificate for 127.0.0.1 / localhost. */
export async function receiverPki(): Promise<ReceiverPki> {
  const ca = await createCa('syslog test CA');
  const server = await issueCertificate(ca, { commonName: 'localhost', sans: { dns: ['localhost'], ip: ['127.0.0.1'] }, eku: 'serverAuth' });
  return { ca, server };
}

export interface SyslogReceiverOptions {
  pki: ReceiverPki;
  /** When set, clients must present a certificate from this CA (mutual TLS). */
  clientCa?: string;
}

export class SyslogReceiver {
  /** Each SYSLOG-MSG as received (the bytes after `MSG-LEN SP`). */
  readonly messages: Buffer[] = [];
  /** Framing violations seen (a test asserts this stays empty). */
  readonly framingErrors: string[] = [];
  /** Number of TLS connections accepted so far. */
  connections = 0;
  private server: tls.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private portNumber = 0;
  private waiters: Array<() => void> = [];

  constructor(private readonly options: SyslogReceiverOptions) {}

  get port(): number {
    return this.portNumber;
  }

  /** Listens on 127.0.0.1: a free port the first time, the same port afterwards. */
  async start(): Promise<void> {
    const server = tls.createServer({
      key: this.options.pki.server.keyPem,
      cert: this.options.pki.server.certPem,
      minVersion: 'TLSv1.2',
      ...(this.options.clientCa ? { ca: this.options.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
    });
    server.on('secureConnection', (socket) => this.accept(socket));
    server.on('tlsClientError', () => {});
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.portNumber, '127.0.0.1', () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address && typeof address === 'object') this.portNumber = address.port;
    this.server = server;
  }

  /** Stops listening and cuts every open connection (the collector "goes down"). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closed;
  }

  /** Messages decoded as UTF-8. */
  texts(): string[] {
    return this.messages.map((m) => m.toString('utf8'));
  }

  /** Resolves when at least `count` messages have arrived; rejects after `timeoutMs`. */
  async waitFor(count: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`syslog receiver: ${this.messages.length} of ${count} messages after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private accept(socket: tls.TLSSocket): void {
    this.connections++;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const space = buffer.indexOf(0x20);
        if (space === -1) {
          if (buffer.length > 10) this.fail(socket, 'no MSG-LEN');
          return;
        }
        const len = buffer.subarray(0, space).toString('ascii');
        // RFC 5425 4.3.1: MSG-LEN = NONZERO-DIGIT *DIGIT.
        if (!/^[1-9][0-9]{0,9}$/.test(len)) {
          this.fail(socket, `bad MSG-LEN ${JSON.stringify(len.slice(0, 12))}`);
          return;
        }
        const size = Number(len);
        if (buffer.length < space + 1 + size) return;
        this.messages.push(Buffer.from(buffer.subarray(space + 1, space + 1 + size)));
        buffer = buffer.subarray(space + 1 + size);
        const waiters = this.waiters;
        this.waiters = [];
        for (const w of waiters) w();
      }
    });
  }

  private fail(socket: tls.TLSSocket, why: string): void {
    this.framingErrors.push(why);
    socket.destroy();
  }
}
