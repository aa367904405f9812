// Audit export to a syslog collector over TLS: PS3.15 A.6 (IHE ATNA "Record Audit Event"), SECURITY.md 2.
//
//  - formatSyslogMessage: one RFC 5424 message (section 6): `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - BOM MSG`,
//    PRI 85 = facility 10 (security/authorization, authpriv) * 8 + severity 5 (notice), MSGID `DICOM+RFC3881`
//    (A.6; IHE's profile says `IHE+RFC-3881`, configurable), no structured data, MSG = the audit XML in UTF-8
//    preceded by the BOM, as RFC 5424 6.4 requires for a MSG that is UTF-8.
//  - frameSyslogMessage: RFC 5425 4.3 octet counting, `MSG-LEN SP SYSLOG-MSG`.
//  - SyslogTlsSender: RFC 5425 transport (TLS >= 1.2, server verified against a configured CA, optional client
//    certificate, port 6514) behind a disk spool.
//
// Delivery semantics (RFC 5425 has no application-level acknowledgement):
//  - send() makes the message durable in the spool (write temp, fsync, rename, fsync dir) and returns; it never
//    waits for the network. A background loop sends spool files in sequence order and deletes each one after the
//    TLS socket accepted its bytes (the write callback). Messages wait in the spool, in order, for as long as the
//    collector is unreachable, refuses the handshake, or until the next process start.
//  - This is exactly-once while connections end cleanly. When a connection breaks *after* a frame was handed to
//    the kernel, that frame can be lost (the same window as rsyslog over plain RFC 5425, without RELP). The local
//    hash-chained audit log is the record of truth; syslog is the off-box copy.
//  - The spool is bounded (maxSpoolBytes). When full, the NEW message is dropped (older ones keep their order
//    and are not overwritten), counted in stats().dropped, emitted as 'dropped', and logged when an overflow
//    episode starts and ends (with the count), so no loss is silent. A spool file that cannot be opened
//    (wrong key, corruption) is moved to spoolDir/rejected/ and counted the same way.
//
// Spool files hold PHI (patient names and IDs in the XML): they are written only through the caller's `seal`
// (the archive's AEAD), in a 0700 directory with 0600 files. Without `seal` the constructor refuses unless
// `plaintextSpool: true` is set explicitly (fail closed, DESIGN.md).

import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { ECDH_CURVES, TLS12_CIPHERS, TLS13_CIPHERSUITES } from '../security/tls-options.js';

// ---------------------------------------------------------------------------------------------
// RFC 5424 formatting and RFC 5425 framing
// ---------------------------------------------------------------------------------------------

export const SYSLOG_TLS_PORT = 6514;
/** Facility 10: security/authorization messages (RFC 5424 table 1); PS3.15 A.6 uses it. */
export const DEFAULT_FACILITY = 10;
/** Severity 5: notice. */
export const DEFAULT_SEVERITY = 5;
export const DEFAULT_APP_NAME = 'dicomvault';
export const DICOM_MSGID = 'DICOM+RFC3881';
const NILVALUE = '-';
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

export interface SyslogHeaderOptions {
  facility?: number;
  severity?: number;
  /** Default os.hostname(). RFC 5424 6.2.4: FQDN preferred, at most 255 printable ASCII characters. */
  hostname?: string;
  appName?: string;
  /** The process id, as a string; the caller passes it (only server.ts reads `process`). Default NILVALUE. */
  procId?: string;
  msgId?: string;
  /** Default: now. */
  timestamp?: Date;
}

/** RFC 5424 6: header fields are PRINTUSASCII (33..126) with a maximum length; empty becomes NILVALUE. */
function headerField(value: string | undefined, max: number): string {
  if (value === undefined) return NILVALUE;
  const clean = value.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return clean === '' ? NILVALUE : clean;
}

/** One RFC 5424 SYSLOG-MSG carrying `msg` (the audit XML) as UTF-8 with a BOM. */
export function formatSyslogMessage(msg: string, options: SyslogHeaderOptions = {}): Buffer {
  const facility = options.facility ?? DEFAULT_FACILITY;
  const severity = options.severity ?? DEFAULT_SEVERITY;
  if (!Number.isInteger(facility) || facility < 0 || facility > 23) throw new RangeError('syslog facility must be 0..23');
  if (!Number.isInteger(severity) || severity < 0 || severity > 7) throw new RangeError('syslog severity must be 0..7');
  // RFC 5424 6.2.3: RFC 3339 timestamp; toISOString is UTC with millisecond precision ("Z").
  const timestamp = (options.timestamp ?? new Date()).toISOString();
  const header =
    `<${facility * 8 + severity}>1 ${timestamp} ${headerField(options.hostname ?? os.hostname(), 255)} ` +
    `${headerField(options.appName ?? DEFAULT_APP_NAME, 48)} ${headerField(options.procId, 128)} ` +
    `${headerField(options.msgId ?? DICOM_MSGID, 32)} ${NILVALUE} `;
  return Buffer.concat([Buffer.from(header, 'ascii'), BOM, Buffer.from(msg, 'utf8')]);
}

/** RFC 5425 4.3: `MSG-LEN SP SYSLOG-MSG`, MSG-LEN the octet count in decimal. */
export function frameSyslogMessage(message: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${message.length} `, 'ascii'), message]);
}

// ---------------------------------------------------------------------------------------------
// The sender
// ---------------------------------------------------------------------------------------------

/** Authenticated encryption of spool files; the archive's key service plugs in here. `open` throws on tampering. */
export interface SpoolSeal {
  seal(plain: Buffer): Buffer;
  open(sealed: Buffer): Buffer;
}

/** The part of a pino logger this module uses. Log lines carry counts and error codes, never message content. */
export interface SenderLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SyslogTlsSenderOptions {
  host: string;
  port?: number;
  /** PEM CA(s) the collector's certificate must chain to. Required: there is no unverified mode. */
  ca: string | Buffer;
  /** Optional client certificate and key (mutual TLS, as ATNA's secure node requires). */
  cert?: string | Buffer | undefined;
  key?: string | Buffer | undefined;
  /** Name checked against the collector's certificate; default `host` (an IP is checked against IP SANs). */
  servername?: string | undefined;
  spoolDir: string;
  seal?: SpoolSeal | undefined;
  /** Explicit opt-out of spool encryption (tests of the spool format only). */
  plaintextSpool?: boolean | undefined;
  /** Bound on the spool's on-disk size. Default 64 MiB. */
  maxSpoolBytes?: number | undefined;
  /** Reconnect backoff: first delay, doubled per failure up to the maximum, with +-20% jitter. Default 500 ms .. 60 s. */
  initialBackoffMs?: number | undefined;
  maxBackoffMs?: number | undefined;
  /**
   * TLS 1.3 only: how long to wait after the handshake for the collector's session ticket, which tells that it
   * accepted our certificate, before sending. Default 1000 ms.
   */
  tls13SettleMs?: number | undefined;
  /** TLS handshake timeout. Default 10 s. */
  connectTimeoutMs?: number | undefined;
  logger?: SenderLogger | undefined;
}

export interface SenderStats {
  /** Messages waiting in the spool (includes one being sent). */
  spooled: number;
  spooledBytes: number;
  delivered: number;
  dropped: number;
  connectFailures: number;
  connected: boolean;
  /** Code or message of the last connection/handshake failure, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE. */
  lastError: string | undefined;
}

export type SendResult = 'spooled' | 'dropped';

const MSG_SUFFIX = '.msg';
const SEQ_DIGITS = 16;
const noopLogger: SenderLogger = { info() {}, warn() {}, error() {} };

function errorCode(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; message?: unknown };
    if (typeof e.code === 'string') return e.code;
    if (typeof e.message === 'string') return e.message;
  }
  return String(err);
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Events: 'delivered' (seq), 'dropped' ({reason: 'spool-full' | 'unreadable'}), 'connected', 'disconnected',
 * 'connect-error' (code string). No 'error' event is ever emitted, so an unlistened sender cannot crash the process.
 */
export class SyslogTlsSender extends EventEmitter {
  private readonly options: SyslogTlsSenderOptions;
  private readonly logger: SenderLogger;
  private readonly maxSpoolBytes: number;
  private readonly ready: Promise<void>;
  /** Serialises spool writes, so sequence order is call order. */
  private writeChain: Promise<unknown>;
  private nextSeq = 1;
  private readonly queue: Array<{ seq: number; size: number }> = [];
  private spooledBytes = 0;
  private delivered = 0;
  private dropped = 0;
  private droppedInEpisode = 0;
  private connectFailures = 0;
  private lastError: string | undefined;
  private socket: tls.TLSSocket | undefined;
  /** The socket of a handshake in progress, so close() can abort it. */
  private connecting: tls.TLSSocket | undefined;
  private closing = false;
  private stopped = false;
  private wake: (() => void) | undefined;
  private backoffTimer: NodeJS.Timeout | undefined;
  private readonly loopDone: Promise<void>;

  constructor(options: SyslogTlsSenderOptions) {
    super();
    if (!options.seal && options.plaintextSpool !== true) {
      throw new Error('syslog spool holds PHI: pass `seal` (spool encryption) or set plaintextSpool: true explicitly');
    }
    if ((options.cert === undefined) !== (options.key === undefined)) throw new Error('syslog client cert and key go together');
    this.options = options;
    this.logger = options.logger ?? noopLogger;
    this.maxSpoolBytes = options.maxSpoolBytes ?? 64 * 1024 * 1024;
    this.ready = this.recover();
    this.writeChain = this.ready;
    this.loopDone = this.ready.then(() => this.drainLoop()).catch((err: unknown) => {
      this.logger.error({ code: errorCode(err) }, 'syslog sender stopped');
    });
  }

  get spoolDir(): string {
    return this.options.spoolDir;
  }

  /** Picks up what a previous run left in the spool (in order) and removes half-written temp files. */
  private async recover(): Promise<void> {
    const dir = this.options.spoolDir;
    await fsp.mkdir(path.join(dir, 'rejected'), { recursive: true, mode: 0o700 });
    await fsp.chmod(dir, 0o700);
    for (const name of (await fsp.readdir(dir)).sort()) {
      if (name.endsWith('.tmp')) await fsp.rm(path.join(dir, name), { force: true });
      if (!name.endsWith(MSG_SUFFIX)) continue;
      const seq = Number.parseInt(name.slice(0, -MSG_SUFFIX.length), 10);
      if (!Number.isSafeInteger(seq) || seq < 1) continue;
      const { size } = await fsp.stat(path.join(dir, name));
      this.queue.push({ seq, size });
      this.spooledBytes += size;
      this.nextSeq = Math.max(this.nextSeq, seq + 1);
    }
    if (this.queue.length > 0) this.logger.info({ spooled: this.queue.length }, 'syslog spool recovered');
  }

  private fileOf(seq: number): string {
    return path.join(this.options.spoolDir, String(seq).padStart(SEQ_DIGITS, '0') + MSG_SUFFIX);
  }

  /**
   * Spools one RFC 5424 message (formatSyslogMessage) for delivery. Resolves once it is durable on disk
   * ('spooled') or refused because the spool is full ('dropped', counted and logged). Never waits for the network.
   */
  send(message: Buffer): Promise<SendResult> {
    const result = this.writeChain.then(() => this.spool(message));
    this.writeChain = result.catch(() => undefined);
    return result;
  }

  private async spool(message: Buffer): Promise<SendResult> {
    if (this.closing) throw new Error('syslog sender is closed');
    const sealed = this.options.seal ? this.options.seal.seal(message) : message;
    if (this.spooledBytes + sealed.length > this.maxSpoolBytes) {
      this.drop('spool-full');
      return 'dropped';
    }
    if (this.droppedInEpisode > 0) {
      this.logger.warn({ dropped: this.droppedInEpisode, droppedTotal: this.dropped }, 'syslog spool accepting again after overflow');
      this.droppedInEpisode = 0;
    }
    const seq = this.nextSeq++;
    const final = this.fileOf(seq);
    const temp = path.join(this.options.spoolDir, `.${seq}.tmp`);
    const handle = await fsp.open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(sealed);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(temp, final);
    await fsyncDir(this.options.spoolDir);
    this.queue.push({ seq, size: sealed.length });
    this.spooledBytes += sealed.length;
    this.wake?.();
    return 'spooled';
  }

  private drop(reason: 'spool-full' | 'unreadable'): void {
    this.dropped++;
    if (reason === 'spool-full') {
      if (this.droppedInEpisode === 0) {
        this.logger.error({ maxSpoolBytes: this.maxSpoolBytes, droppedTotal: this.dropped }, 'syslog spool full: dropping new audit messages');
      }
      this.droppedInEpisode++;
    }
    this.emit('dropped', { reason });
  }

  stats(): SenderStats {
    return {
      spooled: this.queue.length,
      spooledBytes: this.spooledBytes,
      delivered: this.delivered,
      dropped: this.dropped,
      connectFailures: this.connectFailures,
      connected: this.socket !== undefined,
      lastError: this.lastError,
    };
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopped) {
        resolve();
        return;
      }
      this.backoffTimer = setTimeout(() => {
        this.backoffTimer = undefined;
        this.wake = undefined;
        resolve();
      }, ms);
      this.backoffTimer.unref();
      this.wake = () => {
        // A new message does not cut a backoff short; only close() does (via stopped).
        if (!this.stopped) return;
        clearTimeout(this.backoffTimer);
        this.backoffTimer = undefined;
        this.wake = undefined;
        resolve();
      };
    });
  }

  private waitForWork(): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopped || this.closing || this.queue.length > 0) {
        resolve();
        return;
      }
      this.wake = () => {
        this.wake = undefined;
        resolve();
      };
    });
  }

  private connect(): Promise<tls.TLSSocket> {
    const o = this.options;
    const servername = o.servername ?? o.host;
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: o.host,
        port: o.port ?? SYSLOG_TLS_PORT,
        ca: o.ca,
        ...(o.cert !== undefined ? { cert: o.cert, key: o.key } : {}),
        // Node warns when SNI is an IP (RFC 6066 3); identity is still checked against IP SANs via `host`.
        ...(net.isIP(servername) === 0 ? { servername } : {}),
        // RFC 5425 5.1 requires verifying the collector; there is deliberately no option to turn it off.
        rejectUnauthorized: true,
        // SP 800-52r2 (tls-options.ts) rather than RFC 5425's TLS 1.0-era mandatory suite.
        minVersion: 'TLSv1.2',
        ciphers: [...TLS13_CIPHERSUITES, ...TLS12_CIPHERS].join(':'),
        ecdhCurve: ECDH_CURVES,
      });
      this.connecting = socket;
      const timer = setTimeout(() => socket.destroy(Object.assign(new Error('TLS handshake timed out'), { code: 'ETIMEDOUT' })), o.connectTimeoutMs ?? 10_000);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        const ready = (): void => {
          this.connecting = undefined;
          socket.removeListener('error', reject);
          resolve(socket);
        };
        if (socket.getProtocol() !== 'TLSv1.3') {
          ready();
          return;
        }
        // TLS 1.3 (RFC 8446 4.4.2): the client finishes its handshake before the collector has verified our
        // certificate, so a refusal arrives as an alert after 'secureConnect' — frames written in between would
        // count as sent and be lost. OpenSSL collectors send a NewSessionTicket once they accept the handshake:
        // wait for it (or the alert), at most settleMs for collectors that send no tickets.
        const settle = setTimeout(ready, o.tls13SettleMs ?? 1000);
        socket.once('session', () => {
          clearTimeout(settle);
          ready();
        });
        socket.once('close', () => clearTimeout(settle));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        this.connecting = undefined;
        reject(err);
      });
      // destroy() without an error (close() aborting a handshake) emits only 'close'.
      socket.once('close', () => {
        clearTimeout(timer);
        this.connecting = undefined;
        reject(Object.assign(new Error('connection closed during handshake'), { code: 'ECONNABORTED' }));
      });
    });
  }

  private attach(socket: tls.TLSSocket): void {
    this.socket = socket;
    // The collector never sends anything (RFC 5425 4.3); reading keeps 'end' observable.
    socket.on('data', () => {});
    const lost = (err?: Error): void => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      if (err) this.lastError = errorCode(err);
      this.logger.warn({ code: err ? errorCode(err) : 'closed' }, 'syslog connection lost');
      this.emit('disconnected');
      this.wake?.();
    };
    socket.on('error', lost);
    socket.on('end', () => { lost(); socket.destroy(); });
    socket.on('close', () => lost());
  }

  private writeFrame(socket: tls.TLSSocket, frame: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (socket.destroyed || !socket.writable) {
        reject(new Error('socket not writable'));
        return;
      }
      socket.write(frame, (err) => (err ? reject(err) : resolve()));
    });
  }

  private async drainLoop(): Promise<void> {
    let backoff = this.options.initialBackoffMs ?? 500;
    const maxBackoff = this.options.maxBackoffMs ?? 60_000;
    while (!this.stopped) {
      const head = this.queue[0];
      if (!head) {
        if (this.closing) return;
        await this.waitForWork();
        continue;
      }
      let socket = this.socket;
      if (!socket) {
        try {
          socket = await this.connect();
          if (this.stopped) {
            socket.destroy();
            return;
          }
          this.attach(socket);
          backoff = this.options.initialBackoffMs ?? 500;
          this.logger.info({}, 'syslog connected');
          this.emit('connected');
        } catch (err) {
          this.connectFailures++;
          this.lastError = errorCode(err);
          this.logger.error({ code: this.lastError, retryInMs: backoff }, 'syslog connection failed');
          this.emit('connect-error', this.lastError);
          await this.sleep(backoff * (0.8 + Math.random() * 0.4));
          backoff = Math.min(backoff * 2, maxBackoff);
          continue;
        }
      }
      const file = this.fileOf(head.seq);
      let frame: Buffer;
      try {
        const stored = await fsp.readFile(file);
        frame = frameSyslogMessage(this.options.seal ? this.options.seal.open(stored) : stored);
      } catch (err) {
        this.logger.error({ seq: head.seq, code: errorCode(err) }, 'syslog spool file unreadable: moved to rejected/');
        await fsp.rename(file, path.join(this.options.spoolDir, 'rejected', path.basename(file))).catch(() => undefined);
        this.forget(head);
        this.drop('unreadable');
        continue;
      }
      try {
        await this.writeFrame(socket, frame);
      } catch (err) {
        // Not handed over: it stays at the head of the queue and is sent on the next connection.
        this.lastError = errorCode(err);
        if (this.socket === socket) this.socket = undefined;
        socket.destroy();
        continue;
      }
      await fsp.rm(file, { force: true });
      this.forget(head);
      this.delivered++;
      this.emit('delivered', head.seq);
    }
  }

  private forget(entry: { seq: number; size: number }): void {
    if (this.queue[0] === entry) this.queue.shift();
    this.spooledBytes -= entry.size;
  }

  /**
   * Stops accepting messages, sends what it can within `timeoutMs`, then closes the connection. What is not
   * sent stays in the spool for the next start. Resolves with the number of messages left in the spool.
   */
  async close(timeoutMs = 5000): Promise<{ remaining: number }> {
    const pendingWrites = this.writeChain;
    this.closing = true;
    await pendingWrites;
    this.wake?.();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([this.loopDone, timedOut]);
    clearTimeout(timer);
    this.stopped = true;
    this.wake?.();
    this.connecting?.destroy();
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      // end() flushes what was written; destroy after a grace period in case the peer never reads.
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { socket.destroy(); resolve(); }, 1000);
        socket.end(() => { clearTimeout(t); resolve(); });
      });
      socket.destroy();
    }
    await this.loopDone;
    return { remaining: this.queue.length };
  }
}

/** For tests and tools: the spool files currently waiting, in order (names only). */
export function listSpool(spoolDir: string): string[] {
  return fs.readdirSync(spoolDir).filter((n) => n.endsWith(MSG_SUFFIX)).sort();
}
