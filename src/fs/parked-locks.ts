/**
 * Lock requests that a replica apply holding its write lock set would
 * refuse. The apply holds the set from its first page until the kernel's
 * caches are invalidated, about a millisecond. EAGAIN would send SQLite
 * into its retry loop (a WAL reader tries again up to 100 times with
 * growing sleeps; in rollback mode the busy handler sleeps 1, 2, 5… ms),
 * costing the FUSE thread a request per try and the reader up to a sleep
 * past the moment the new transaction became readable. A parked request
 * is answered once the set is released instead (granted, or EAGAIN if it
 * still conflicts).
 *
 * Nothing the apply waits for depends on a parked request (its release
 * only waits for the notifier), so parking cannot deadlock. The same holds
 * for a rollback-mode writer parked behind a snapshot's read hold
 * (image-holds.ts): the main thread's copy reads the data directory, never
 * the mount.
 */
import type { LockMask } from '../store/locks.js';

export interface ParkedLock {
  /** The request's unique, for session.complete. */
  readonly unique: number;
  readonly owner: bigint;
  readonly mask: LockMask;
  readonly exclusive: boolean;
}

export class ParkedLocks {
  private readonly byDB = new Map<string, ParkedLock[]>();

  park(db: string, lock: ParkedLock): void {
    const list = this.byDB.get(db);
    if (list === undefined) this.byDB.set(db, [lock]);
    else list.push(lock);
  }

  /** Every request parked on `db`, in arrival order, now removed. */
  take(db: string): ParkedLock[] {
    const list = this.byDB.get(db) ?? [];
    this.byDB.delete(db);
    return list;
  }

  /** Removes the request `unique` (interrupted); true if it was parked. */
  cancel(unique: number): boolean {
    for (const [db, list] of this.byDB) {
      const i = list.findIndex((l) => l.unique === unique);
      if (i < 0) continue;
      list.splice(i, 1);
      if (list.length === 0) this.byDB.delete(db);
      return true;
    }
    return false;
  }

  /** Removes and returns the requests of `owner` on `db` (the owner's locks there just ended). */
  cancelOwner(db: string, owner: bigint): ParkedLock[] {
    const list = this.byDB.get(db);
    if (list === undefined) return [];
    const gone = list.filter((l) => l.owner === owner);
    if (gone.length === 0) return [];
    const kept = list.filter((l) => l.owner !== owner);
    if (kept.length === 0) this.byDB.delete(db);
    else this.byDB.set(db, kept);
    return gone;
  }
}
