// Share links (issue 5 item 5, SECURITY.md 3 "Our share links"): a creator who may `share` a study gets an
// opaque random token for it; the recipient's browser exchanges the token (on the web listener) for a short-lived
// session whose cookie reads exactly that study. HTTP-agnostic: http/routes/shares.ts translates.
//
// - Tokens and session cookies are 32 random bytes (base64url); only their SHA-256 is stored, so a copy of the
//   database opens nothing. The second factor (e.g. the patient's birth date) is stored as scrypt with a salt.
// - A study that does not exist and one the caller may not share answer the same (NOT_FOUND); so do links of
//   other creators. Every refusal of an exchange answers the same to the client (the route sends 401); only the
//   log says which (unknown, revoked, expired, used up, locked, wrong or missing second factor).
// - Log lines carry `event`, the share id and the principal id: never a token, a second factor or a study UID.

import { createHash, randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { isValidUid } from '../dicom/uid.js';
import { AppError } from '../errors.js';
import type { IndexStore } from '../index/index-store.js';
import type { ShareRecord, ShareScope, ShareSessionRecord, ShareStore } from '../index/share-store.js';
import type { Logger } from '../logger.js';
import { NO_ATTRIBUTES, type Principal, type ShareGrant } from '../security/principal.js';
import type { Access } from './access.js';

const scrypt = promisify(scryptCallback) as (password: string, salt: Buffer, keylen: number, options: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

/** scrypt cost (RFC 7914; OWASP's minimum N=2^17 would cost ~128 MiB per attempt: 2^15 with r=8 is 32 MiB, ~60 ms). */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const SCRYPT_KEY_BYTES = 32;
const SALT_BYTES = 16;
const TOKEN_BYTES = 32;
/** base64url of 32 bytes, unpadded: what create() hands out and exchange()/sessionPrincipal() accept. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export const MAX_SECOND_FACTOR_LENGTH = 128;
export const MAX_NOTE_LENGTH = 500;

/** Where share.* events go: the application logger, or a request's child of it. */
export type ShareEventLog = Pick<Logger, 'info' | 'warn'>;

export interface ShareLinksSettings {
  defaultTtlHours: number;
  maxTtlHours: number;
  sessionTtlMinutes: number;
  maxFailedAttempts: number;
}

export interface ShareLinksDeps {
  store: ShareStore;
  /** Only the study lookup is needed (one indexed query). */
  index: Pick<IndexStore, 'studyAttributes'>;
  /** config.shares */
  settings: ShareLinksSettings;
  /** Where the share.* events go when a call names no (request) logger. */
  log: ShareEventLog;
  /** The clock; tests inject one. */
  now?: () => Date;
}

export interface CreateShareInput {
  studyInstanceUID: string;
  scope: ShareScope;
  /** Default: settings.defaultTtlHours; at most settings.maxTtlHours. */
  expiresInHours?: number;
  /** Exchanges allowed; absent or null: until the link expires. */
  maxUses?: number | null;
  /** e.g. the patient's birth date (YYYYMMDD or YYYY-MM-DD); compared after normalisation (normalizeSecondFactor). */
  secondFactor?: string;
  note?: string;
}

export type ShareStatus = 'active' | 'revoked' | 'expired' | 'used-up' | 'locked';

/** What creators and admins see of a link: never the token or any hash. */
export interface ShareView {
  id: string;
  studyInstanceUID: string;
  scope: ShareScope;
  createdBy: string;
  createdAt: Date;
  expiresAt: Date;
  maxUses: number | null;
  uses: number;
  /** Whether the link asks for a second factor (never the factor). */
  secondFactor: boolean;
  failedAttempts: number;
  status: ShareStatus;
  revokedAt?: Date;
  revokedBy?: string;
  note?: string;
}

/** Why an exchange was refused: for the log only; the client always sees the same answer. */
export type ShareRefusal =
  | 'malformed-token'
  | 'unknown-token'
  | 'revoked'
  | 'expired'
  | 'used-up'
  | 'locked'
  | 'second-factor-missing'
  | 'second-factor-wrong';

export type ExchangeResult =
  | { ok: true; cookieValue: string; session: ShareSessionRecord; share: ShareView; grant: ShareGrant }
  | { ok: false; reason: ShareRefusal; shareId?: string };

const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
const newSecret = (): string => randomBytes(TOKEN_BYTES).toString('base64url');

/** Equal hex digests, in time independent of where they differ. */
function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/**
 * The form a second factor is compared in: surrounding blanks removed, Unicode NFC, and a date written
 * YYYY-MM-DD becomes DICOM's YYYYMMDD (the DA value the creator probably copied), so both spellings match.
 */
export function normalizeSecondFactor(value: string): string {
  const trimmed = value.normalize('NFC').trim();
  const date = /^(\d{4})-(\d{2})-(\d{2})$/.exec(trimmed);
  return date ? `${date[1]}${date[2]}${date[3]}` : trimmed;
}

export async function hashSecondFactor(value: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await scrypt(normalizeSecondFactor(value), salt, SCRYPT_KEY_BYTES, SCRYPT);
  return `scrypt$${salt.toString('hex')}$${hash.toString('hex')}`;
}

/** Does `value` match a stored `scrypt$<salt>$<hash>`? A malformed stored value matches nothing. */
export async function verifySecondFactor(value: string, stored: string): Promise<boolean> {
  const [kind, saltHex, hashHex, ...rest] = stored.split('$');
  if (kind !== 'scrypt' || !saltHex || !hashHex || rest.length > 0) return false;
  const expected = Buffer.from(hashHex, 'hex');
  if (expected.length !== SCRYPT_KEY_BYTES) return false;
  const actual = await scrypt(normalizeSecondFactor(value), Buffer.from(saltHex, 'hex'), SCRYPT_KEY_BYTES, SCRYPT);
  return timingSafeEqual(actual, expected);
}

export class ShareLinks {
  private readonly store: ShareStore;
  private readonly index: Pick<IndexStore, 'studyAttributes'>;
  private readonly settings: ShareLinksSettings;
  private readonly log: ShareEventLog;
  private readonly now: () => Date;

  constructor(deps: ShareLinksDeps) {
    this.store = deps.store;
    this.index = deps.index;
    this.settings = deps.settings;
    this.log = deps.log;
    this.now = deps.now ?? (() => new Date());
  }

  /**
   * A new link. The study must exist and the caller may `share` it; otherwise NOT_FOUND, worded as for a missing
   * study (the answer must not tell whether a study exists). The token is returned here once and never again.
   */
  async create(access: Access, input: CreateShareInput, log: ShareEventLog = this.log): Promise<{ share: ShareView; token: string }> {
    if (!isValidUid(input.studyInstanceUID)) throw new AppError('INVALID_UID', 'studyInstanceUID is not a valid UID');
    if (input.scope !== 'view' && input.scope !== 'download') throw new AppError('BAD_REQUEST', "scope must be 'view' or 'download'");
    const hours = input.expiresInHours ?? this.settings.defaultTtlHours;
    if (!Number.isFinite(hours) || hours <= 0 || hours > this.settings.maxTtlHours) {
      throw new AppError('BAD_REQUEST', `expiresInHours must be more than 0 and at most ${this.settings.maxTtlHours}`);
    }
    const maxUses = input.maxUses ?? null;
    if (maxUses !== null && (!Number.isSafeInteger(maxUses) || maxUses < 1)) throw new AppError('BAD_REQUEST', 'maxUses must be a positive integer');
    let secondFactorHash: string | undefined;
    if (input.secondFactor !== undefined) {
      const factor = normalizeSecondFactor(input.secondFactor);
      if (factor === '' || factor.length > MAX_SECOND_FACTOR_LENGTH) {
        throw new AppError('BAD_REQUEST', `secondFactor must be 1 to ${MAX_SECOND_FACTOR_LENGTH} characters`);
      }
    }
    if (input.note !== undefined && input.note.length > MAX_NOTE_LENGTH) throw new AppError('BAD_REQUEST', `note must be at most ${MAX_NOTE_LENGTH} characters`);

    const study = this.index.studyAttributes(input.studyInstanceUID);
    if (!study || !access.allows('share', study)) throw new AppError('NOT_FOUND', 'no such study');

    if (input.secondFactor !== undefined) secondFactorHash = await hashSecondFactor(input.secondFactor);
    const token = newSecret();
    const createdAt = this.now();
    const record: ShareRecord = {
      id: randomBytes(16).toString('base64url'),
      tokenHash: sha256Hex(token),
      studyInstanceUID: study.studyInstanceUID,
      scope: input.scope,
      createdBy: access.principal.id,
      createdAt,
      expiresAt: new Date(createdAt.getTime() + Math.round(hours * 3_600_000)),
      maxUses,
      uses: 0,
      failedAttempts: 0,
      ...(secondFactorHash === undefined ? {} : { secondFactorHash }),
      ...(input.note === undefined || input.note === '' ? {} : { note: input.note }),
    };
    this.store.create(record);
    log.info(
      { event: 'share.created', shareId: record.id, principal: access.principal.id, scope: record.scope, expiresAt: record.expiresAt.toISOString(), maxUses, secondFactor: secondFactorHash !== undefined },
      'share link created',
    );
    return { share: this.view(record), token };
  }

  /** Admins see every link; everyone else the links they created. Newest first. */
  list(access: Access): ShareView[] {
    const records = this.isAdmin(access) ? this.store.list() : this.store.list({ createdBy: access.principal.id });
    return records.map((r) => this.view(r));
  }

  /** One link, for its creator or an admin; NOT_FOUND for anyone else. */
  get(access: Access, id: string): ShareView {
    return this.view(this.visible(access, id));
  }

  /** Revokes a link and ends its sessions. Revoking a revoked link changes nothing and succeeds (DELETE is idempotent). */
  revoke(access: Access, id: string, log: ShareEventLog = this.log): ShareView {
    const record = this.visible(access, id);
    const at = this.now();
    if (this.store.revoke(record.id, access.principal.id, at)) {
      log.info({ event: 'share.revoked', shareId: record.id, principal: access.principal.id }, 'share link revoked');
    }
    return this.view(this.store.get(record.id) ?? record);
  }

  /**
   * The recipient's side: a valid token (and second factor, when the link has one) becomes a session. Counts one
   * use. Every failure is a value whose reason is for the log; the client must be told the same for all of them.
   */
  async exchange(token: string, secondFactor?: string, log: ShareEventLog = this.log): Promise<ExchangeResult> {
    const refuse = (reason: ShareRefusal, shareId?: string): ExchangeResult => {
      log.info({ event: 'share.refused', reason, ...(shareId === undefined ? {} : { shareId, principal: `share:${shareId}` }) }, 'share link refused');
      return shareId === undefined ? { ok: false, reason } : { ok: false, reason, shareId };
    };
    if (!TOKEN_SHAPE.test(token)) return refuse('malformed-token');
    const tokenHash = sha256Hex(token);
    // The lookup is by an index on the hash: timing can at most tell an attacker about SHA-256 prefixes of tokens
    // they do not have. The comparison after it is constant-time anyway.
    const found = this.store.findByTokenHash(tokenHash);
    if (!found || !sameHex(found.tokenHash, tokenHash)) return refuse('unknown-token');
    const now = this.now();
    const unusable = this.refusalOf(found, now);
    if (unusable) return refuse(unusable, found.id);

    if (found.secondFactorHash !== undefined) {
      const given = secondFactor === undefined ? '' : normalizeSecondFactor(secondFactor);
      if (given === '') return refuse('second-factor-missing', found.id);
      if (given.length > MAX_SECOND_FACTOR_LENGTH || !(await verifySecondFactor(given, found.secondFactorHash))) {
        const attempts = this.store.recordFailedAttempt(found.id);
        if (attempts >= this.settings.maxFailedAttempts) {
          log.warn({ event: 'share.locked', shareId: found.id, principal: `share:${found.id}`, failedAttempts: attempts }, 'share link locked after wrong second factors');
        }
        return refuse('second-factor-wrong', found.id);
      }
      // Wrong guesses made while scrypt ran for this one may have locked the link meanwhile.
      const current = this.store.get(found.id);
      if (!current || current.failedAttempts >= this.settings.maxFailedAttempts) return refuse('locked', found.id);
    }

    const redeemed = this.store.redeem(found.id, now);
    if (!redeemed) {
      // Revoked, expired or used up between the read and the atomic update.
      const current = this.store.get(found.id);
      return refuse((current && this.refusalOf(current, now)) || 'used-up', found.id);
    }

    this.store.deleteExpiredSessions(now);
    const cookieValue = newSecret();
    const sessionEnd = Math.min(now.getTime() + this.settings.sessionTtlMinutes * 60_000, redeemed.expiresAt.getTime());
    const session: ShareSessionRecord = { tokenHash: sha256Hex(cookieValue), shareId: redeemed.id, createdAt: now, expiresAt: new Date(sessionEnd) };
    this.store.addSession(session);
    const grant: ShareGrant = { shareId: redeemed.id, studyInstanceUID: redeemed.studyInstanceUID, scope: redeemed.scope, expiresAt: session.expiresAt };
    log.info(
      { event: 'share.used', shareId: redeemed.id, principal: `share:${redeemed.id}`, uses: redeemed.uses, maxUses: redeemed.maxUses, sessionExpiresAt: session.expiresAt.toISOString() },
      'share link used',
    );
    return { ok: true, cookieValue, session, share: this.view(redeemed), grant };
  }

  /**
   * The principal of a share session cookie, or undefined when there is no such session, it ended, or its link
   * was revoked or expired. Runs on every web request carrying the cookie: one indexed lookup for the session,
   * one for the link.
   */
  sessionPrincipal(cookieValue: string): Principal | undefined {
    if (!TOKEN_SHAPE.test(cookieValue)) return undefined;
    const tokenHash = sha256Hex(cookieValue);
    const session = this.store.findSession(tokenHash);
    if (!session || !sameHex(session.tokenHash, tokenHash)) return undefined;
    const now = this.now().getTime();
    if (now >= session.expiresAt.getTime()) return undefined;
    const share = this.store.get(session.shareId);
    if (!share || share.revokedAt !== undefined || now >= share.expiresAt.getTime()) return undefined;
    return {
      kind: 'share',
      id: `share:${share.id}`,
      roles: [],
      attributes: NO_ATTRIBUTES,
      share: { shareId: share.id, studyInstanceUID: share.studyInstanceUID, scope: share.scope, expiresAt: session.expiresAt },
    };
  }

  /** Drops ended sessions (exchange() also does it); returns how many. For a periodic job, if one is wanted. */
  deleteExpiredSessions(): number {
    return this.store.deleteExpiredSessions(this.now());
  }

  private isAdmin(access: Access): boolean {
    return access.principal.kind !== 'share' && access.allowsOnArchive('admin');
  }

  /** The link if the caller created it or is an admin; NOT_FOUND otherwise (same answer as no such link). */
  private visible(access: Access, id: string): ShareRecord {
    const record = this.store.get(id);
    if (!record || (record.createdBy !== access.principal.id && !this.isAdmin(access))) throw new AppError('NOT_FOUND', 'no such share link');
    return record;
  }

  private refusalOf(record: ShareRecord, now: Date): Exclude<ShareStatus, 'active'> | undefined {
    if (record.revokedAt !== undefined) return 'revoked';
    if (now.getTime() >= record.expiresAt.getTime()) return 'expired';
    if (record.secondFactorHash !== undefined && record.failedAttempts >= this.settings.maxFailedAttempts) return 'locked';
    if (record.maxUses !== null && record.uses >= record.maxUses) return 'used-up';
    return undefined;
  }

  private view(r: ShareRecord): ShareView {
    return {
      id: r.id,
      studyInstanceUID: r.studyInstanceUID,
      scope: r.scope,
      createdBy: r.createdBy,
      createdAt: r.createdAt,
      expiresAt: r.expiresAt,
      maxUses: r.maxUses,
      uses: r.uses,
      secondFactor: r.secondFactorHash !== undefined,
      failedAttempts: r.failedAttempts,
      status: this.refusalOf(r, this.now()) ?? 'active',
      ...(r.revokedAt === undefined ? {} : { revokedAt: r.revokedAt }),
      ...(r.revokedBy === undefined ? {} : { revokedBy: r.revokedBy }),
      ...(r.note === undefined ? {} : { note: r.note }),
    };
  }
}
