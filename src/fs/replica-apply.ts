/**
 * The `apply` command on the FUSE thread (ref §6.6, §9.6, ARCHITECTURE §4,
 * §3.4): a received LTX file is applied under the database's write lock set,
 * and the set stays held until the notifier has written the kernel-cache
 * invalidations, so no SQLite reader can take a lock and read a stale page.
 *
 * Applies wait, per database in arrival order, while SQLite connections hold
 * conflicting locks. While one waits, new lock requests that would stop it
 * are refused with EAGAIN (like SQLite's PENDING lock), so a stream of
 * overlapping readers cannot starve it; SQLite's busy handler retries them.
 * A waiting apply is retried after every FUSE request (`poll`).
 */
import { applyLTXFiles, restoreWalIndexPage, type ApplyResult } from '../store/apply.js';
import type { DB } from '../store/db.js';
import { ApplyFatalError } from '../store/errors.js';
import { DATABASE_LOCKS, Lock, type LockMask, type LockingMode, READ_LOCKS, newInternalOwner } from '../store/locks.js';
import type { ApplyCommand, StoreEvent } from '../store/messages.js';
import type { Store } from '../store/store.js';

/** Locks the WAL write set takes exclusively: any request for them conflicts. */
const WAL_SET_EXCLUSIVE: LockMask = Lock.WRITE | Lock.CKPT | Lock.RECOVER | READ_LOCKS;
/** Locks the WAL write set holds shared or probes: only exclusive requests conflict. */
const WAL_SET_SHARED: LockMask = Lock.SHARED | Lock.DMS | Lock.PENDING;

/**
 * True when granting a lock request on a database in `mode` could stop the
 * write lock set from being taken: the requests refused while an apply waits.
 * `held` is what the requesting owner holds already: an owner inside a
 * transaction (it holds a lock of the set, other than the DMS and database
 * SHARED locks WAL connections keep for their lifetime) may take what it
 * needs to finish and release; refusing it would make the apply wait for a
 * transaction that cannot end (SQLite holding WAL WRITE while it retries
 * READ1..4 to restart the WAL spins for ~10 s before SQLITE_PROTOCOL).
 */
export function conflictsWithWriteSet(mode: LockingMode, mask: LockMask, exclusive: boolean, held: LockMask = 0): boolean {
  if (mode === 'rollback') return (held & DATABASE_LOCKS) === 0 && (mask & DATABASE_LOCKS) !== 0;
  if ((held & WAL_SET_EXCLUSIVE) !== 0) return false;
  if ((mask & WAL_SET_EXCLUSIVE) !== 0) return true;
  return exclusive && (mask & WAL_SET_SHARED) !== 0;
}

interface Pending {
  readonly cmd: ApplyCommand;
  readonly owner: bigint;
  /** The owner holds the write lock set already (a HALT lock, halt-guards.ts): not taken, not released. */
  readonly borrowed: boolean;
  /** Set once applied: the write set is held until the notifier wrote `seq`. */
  applied: { db: DB; seq: number; result: ApplyResult } | null;
}

export interface ApplierDeps {
  readonly store: Store;
  post(event: StoreEvent): void;
  log(line: string): void;
  /**
   * Queues the invalidation notices for what an apply changed (the last one
   * with a wake-up) and sends them; returns the last notice's sequence
   * number, or null when there is no notifier (nothing to wait for).
   */
  invalidate(db: DB, result: ApplyResult): number | null;
  /** The notifier's progress (NoticeQueue.written). */
  written(): number;
  /** True while `db` may not be applied to yet (step-down recovery still pending). */
  blocked?(db: string): boolean;
  /** An apply released `db`'s write lock set (lock requests parked meanwhile may be answered). */
  released?(db: DB): void;
}

export class ReplicaApplier {
  private readonly queues = new Map<string, Pending[]>();
  /** Databases whose apply failed half way: their write set stays held until the daemon exits. */
  private readonly broken = new Set<string>();

  constructor(private readonly deps: ApplierDeps) {}

  /** `heldBy`: apply under this owner's write lock set, which it holds already (a HALT lock on the primary). */
  enqueue(cmd: ApplyCommand, heldBy?: bigint): void {
    let q = this.queues.get(cmd.db);
    if (q === undefined) {
      q = [];
      this.queues.set(cmd.db, q);
    }
    q.push({ cmd, owner: heldBy ?? newInternalOwner(), borrowed: heldBy !== undefined, applied: null });
    this.pump(cmd.db);
  }

  /** True while an apply of `db` waits for or holds its locks. */
  waiting(db: string): boolean {
    return this.queues.size !== 0 && (this.queues.get(db)?.length ?? 0) > 0;
  }

  /** True while an apply of `db` holds its write lock set (applied, its invalidations not yet written). */
  holding(db: string): boolean {
    return this.queues.size !== 0 && (this.queues.get(db)?.[0]?.applied ?? null) !== null;
  }

  /** Retries waiting applies and finishes those whose notices are written. Cheap when idle. */
  poll(): void {
    if (this.queues.size === 0) return;
    for (const name of [...this.queues.keys()]) this.pump(name);
  }

  private pump(name: string): void {
    const q = this.queues.get(name);
    if (q === undefined) return;
    while (q.length > 0) {
      const head = q[0]!;
      if (head.applied === null && (this.deps.blocked?.(name) === true || !this.start(head))) return;
      if (head.applied !== null) {
        if (this.deps.written() < head.applied.seq) return;
        const { db, result } = head.applied;
        try {
          if (result.shmPage !== null) restoreWalIndexPage(db, result.shmPage);
        } catch (err) {
          this.deps.log(`ERROR ${db.name}: rewriting the wal-index header: ${err instanceof Error ? err.message : String(err)}`);
        }
        // The kernel's caches are clean: readers may come back.
        if (!head.borrowed) db.locks.releaseAll(head.owner);
        q.shift();
        this.deps.post({ type: 'commandResult', id: head.cmd.id, status: 'ok', inodes: [] });
        // Before the next apply of the queue may take the set again.
        this.deps.released?.(db);
        continue;
      }
      q.shift();
    }
    this.queues.delete(name);
  }

  /** False while the locks are busy. Otherwise the command was applied (head.applied set) or answered with an error. */
  private start(p: Pending): boolean {
    const { cmd } = p;
    const fail = (message: string): true => {
      this.deps.post({ type: 'commandResult', id: cmd.id, status: 'error', message });
      return true;
    };
    if (this.broken.has(cmd.db)) return fail(`${cmd.db}: an earlier apply failed half way; the daemon is stopping`);
    let db: DB;
    try {
      db = this.deps.store.db(cmd.db) ?? this.deps.store.createDB(cmd.db);
    } catch (err) {
      return fail(err instanceof Error ? err.message : String(err));
    }
    if (!p.borrowed && !db.locks.tryAcquireWriteSet(p.owner, db.mode)) return false;
    let result: ApplyResult;
    try {
      result = applyLTXFiles(db, cmd.paths, cmd.quarantine, cmd.syncDatabase);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof ApplyFatalError) {
        // Pages may be half written: SQLite must not read them. The locks
        // stay held; the daemon exits and start-up re-applies the LTX file.
        this.broken.add(cmd.db);
        this.deps.log(`FATAL ${message}`);
        this.deps.post({ type: 'fatal', db: cmd.db, message });
        return fail(message);
      }
      if (!p.borrowed) db.locks.releaseAll(p.owner);
      this.deps.log(`${cmd.db}: apply refused: ${message}`);
      return fail(message);
    }
    const seq = this.deps.invalidate(db, result);
    p.applied = { db, seq: seq ?? 0, result };
    return true;
  }
}
