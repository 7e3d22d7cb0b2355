/**
 * Primary → replica at runtime on the FUSE thread (ref §7.3: step-down,
 * then Store.Recover). The role already refuses every write (EACCES), so a
 * transaction cut off by the switch can never commit; what it left in the
 * files is undone here (src/store/step-down.ts) once no SQLite connection
 * is inside a transaction: the database's write lock set is taken, kept
 * until the kernel's cached copies of the rewritten ranges are dropped, and
 * released. Until then conflicting lock requests are refused with EAGAIN
 * (SQLite retries: a reader must not find the hot journal and try to roll
 * it back itself, which a replica refuses) and replicated applies wait.
 * Retried after every FUSE request (`poll`).
 */
import type { DB } from '../store/db.js';
import { type LockMask, newInternalOwner } from '../store/locks.js';
import type { StoreEvent } from '../store/messages.js';
import { type StepDownResult, recoverToLastLTX } from '../store/step-down.js';
import { conflictsWithWriteSet } from './replica-apply.js';

interface Pending {
  readonly db: DB;
  readonly owner: bigint;
  /** Set once recovered: the write set is held until the notifier wrote `seq`. */
  seq: number | null;
}

export interface StepDownDeps {
  post(event: StoreEvent): void;
  log(line: string): void;
  /** Queues the invalidations for a recovery (the last with a wake-up); returns its sequence number, or null without a notifier. */
  invalidate(db: DB, result: StepDownResult): number | null;
  /** The notifier's progress (NoticeQueue.written). */
  written(): number;
}

export class StepDownRecovery {
  private readonly pending = new Map<string, Pending>();
  /** Databases whose recovery failed: their write set stays held (nothing may read them) until the daemon exits. */
  private readonly broken = new Set<string>();

  constructor(private readonly deps: StepDownDeps) {}

  /** Recovers each database before it serves as a replica. */
  begin(dbs: readonly DB[]): void {
    for (const db of dbs) {
      if (this.pending.has(db.name) || this.broken.has(db.name)) continue;
      this.pending.set(db.name, { db, owner: newInternalOwner(), seq: null });
    }
    this.poll();
  }

  /** True while `db` waits for or is in recovery. */
  waiting(db: string): boolean {
    return this.pending.size !== 0 && this.pending.has(db);
  }

  /** True when a lock request of `owner` must wait for the recovery of `db` (EAGAIN). */
  blocks(db: DB, owner: bigint, mask: LockMask, exclusive: boolean): boolean {
    return this.waiting(db.name) && conflictsWithWriteSet(db.mode, mask, exclusive, heldBy(db, owner));
  }

  /** Retries waiting recoveries and finishes those whose notices are written. Cheap when idle. */
  poll(): void {
    if (this.pending.size === 0) return;
    for (const p of [...this.pending.values()]) this.pump(p);
  }

  private pump(p: Pending): void {
    const { db } = p;
    if (p.seq === null) {
      if (db.locks.writerActive || !db.locks.tryAcquireWriteSet(p.owner, db.mode)) return;
      let result: StepDownResult;
      try {
        result = recoverToLastLTX(db);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        this.broken.add(db.name);
        this.pending.delete(db.name);
        this.deps.log(`FATAL ${db.name}: step-down recovery failed: ${message}`);
        this.deps.post({ type: 'fatal', db: db.name, message });
        return;
      }
      if (result.journalRemoved || result.walTruncatedAt !== null) {
        this.deps.log(
          `${db.name}: stepped down: ${result.journalRemoved ? 'rolled back the journal' : ''}${result.journalRemoved && result.walTruncatedAt !== null ? ', ' : ''}${result.walTruncatedAt !== null ? `cut the WAL back to ${result.walTruncatedAt}` : ''}; database equals its last LTX file`,
        );
      }
      p.seq = this.deps.invalidate(db, result) ?? 0;
    }
    if (this.deps.written() < p.seq) return;
    db.locks.releaseAll(p.owner);
    this.pending.delete(db.name);
  }
}

/** Every lock `owner` holds on `db`, shared or exclusive. */
export function heldBy(db: DB, owner: bigint): LockMask {
  return db.locks.sharedBy(owner) | db.locks.exclusiveBy(owner);
}
