// The share-link port (issue 5, SECURITY.md 3 "Our share links"): what policy/share-links.ts needs to keep
// links and the browser sessions they are exchanged for. Only hashes of tokens are stored: a copy of the
// database does not open any link. Implementation: sqlite/sqlite-share-store.ts (same encrypted file as the index).

export type ShareScope = 'view' | 'download';

export interface ShareRecord {
  /** Public id (random, not the token): used to list and revoke, and in the audit trail. */
  id: string;
  /** SHA-256 (hex) of the link token. */
  tokenHash: string;
  studyInstanceUID: string;
  scope: ShareScope;
  /** Principal id of the creator: they (and admins) may list and revoke it. */
  createdBy: string;
  createdAt: Date;
  expiresAt: Date;
  /** How many times the link may be exchanged for a session; null: until it expires. */
  maxUses: number | null;
  uses: number;
  /** scrypt hash of the second factor (e.g. the patient's birth date), `scrypt$<salt hex>$<hash hex>`; absent: none. */
  secondFactorHash?: string;
  /** Wrong second factors so far; the link locks after a few. */
  failedAttempts: number;
  revokedAt?: Date;
  revokedBy?: string;
  /** A free-text note from the creator (who it is for); shown to creator and admins only. */
  note?: string;
}

export interface ShareSessionRecord {
  /** SHA-256 (hex) of the cookie value. */
  tokenHash: string;
  shareId: string;
  createdAt: Date;
  expiresAt: Date;
}

export interface ShareStore {
  create(record: ShareRecord): void;
  get(id: string): ShareRecord | undefined;
  findByTokenHash(tokenHash: string): ShareRecord | undefined;
  /**
   * One use of the link, atomically: when it is not revoked, not expired at `now` and has uses left, `uses`
   * goes up by one and the updated record is returned; otherwise nothing changes and undefined is returned.
   */
  redeem(id: string, now: Date): ShareRecord | undefined;
  /** Counts a wrong second factor; returns the new count. */
  recordFailedAttempt(id: string): number;
  /** Every link, newest first; only those created by `createdBy` when given. */
  list(filter?: { createdBy?: string }): ShareRecord[];
  /** Marks the link revoked (its sessions end with it); false when there is no such link or it was already revoked. */
  revoke(id: string, by: string, at: Date): boolean;
  addSession(session: ShareSessionRecord): void;
  findSession(tokenHash: string): ShareSessionRecord | undefined;
  /** Drops sessions that ended before `before`; returns how many. */
  deleteExpiredSessions(before: Date): number;
}
