// Prepared statements by SQL text. Search SQL varies only with the shape of a query (which keys,
// which matcher kinds), so a few hundred shapes cover real traffic; the oldest is dropped beyond that.

import type { Database, Statement } from 'better-sqlite3-multiple-ciphers';

export class StatementCache {
  private readonly statements = new Map<string, Statement>();

  constructor(
    private readonly db: Database,
    private readonly capacity = 500,
  ) {}

  get(sql: string): Statement {
    let stmt = this.statements.get(sql);
    if (stmt) {
      // Map order is insertion order: re-insert to mark it recently used.
      this.statements.delete(sql);
    } else {
      stmt = this.db.prepare(sql);
      if (this.statements.size >= this.capacity) {
        this.statements.delete(this.statements.keys().next().value!);
      }
    }
    this.statements.set(sql, stmt);
    return stmt;
  }

  get size(): number {
    return this.statements.size;
  }
}
