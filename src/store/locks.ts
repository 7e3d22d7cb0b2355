/**
 * LiteFS's emulation of SQLite's POSIX locks for one database (ref §5).
 *
 * SQLite coordinates its connections with fcntl byte-range locks on the
 * database file (PENDING, RESERVED, SHARED) and on the `-shm` file (WAL
 * WRITE, CKPT, RECOVER, READ0..4, DMS). LiteFS answers those requests itself,
 * keeping one reader/writer "mutex" per lock byte, because it must see the
 * moment a WAL writer releases WRITE (the commit signal) and must be able to
 * take the same locks for its own writes (apply, checkpoint, HALT).
 *
 * Model, per mutex: unlocked, shared by n owners, or exclusive to one owner.
 * Per owner (the FUSE lock_owner, or an internal owner) a guard set records
 * which mutexes it holds shared and which exclusive. Every operation is a try:
 * nothing ever waits (SQLite polls with its own busy handler).
 *
 * Differences from LiteFS v0.5.11, on purpose:
 * - A request naming several locks is all-or-nothing, as fcntl is for one
 *   range: if any lock is refused, nothing changes. LiteFS keeps the locks it
 *   got before the refusal.
 * - Guard sets are freed (returned to a small pool) when they hold nothing;
 *   LiteFS keeps one per owner forever.
 * - An F_GETLK write query honours the CKPT rule, so it answers what F_SETLK
 *   would do.
 *
 * Representation: a lock set is a 12-bit mask (`Lock`), the three database
 * locks in bits 0..2 exactly as `DbLock` from src/sqlite, the nine `-shm`
 * locks in bits 3..11 as `ShmLock << 3`. The table keeps four masks (held
 * shared by anyone, held by two or more readers, held exclusive, and the
 * fence) plus a reader count per mutex, so a request costs a map lookup and a
 * few integer operations.
 */
import { DbLock, type DbLockMask, ShmLock, type ShmLockMask } from '../sqlite/index.js';
import type { WriteFence } from './fence.js';

/** One bit per emulated lock byte. */
export const Lock = {
  PENDING: DbLock.PENDING,
  RESERVED: DbLock.RESERVED,
  SHARED: DbLock.SHARED,
  WRITE: ShmLock.WRITE << 3,
  CKPT: ShmLock.CKPT << 3,
  RECOVER: ShmLock.RECOVER << 3,
  READ0: ShmLock.READ0 << 3,
  READ1: ShmLock.READ1 << 3,
  READ2: ShmLock.READ2 << 3,
  READ3: ShmLock.READ3 << 3,
  READ4: ShmLock.READ4 << 3,
  DMS: ShmLock.DMS << 3,
} as const;

/** A set of `Lock` bits. */
export type LockMask = number;

/** Number of emulated lock bytes (bits of a LockMask). */
export const LOCK_COUNT = 12;
/** Locks on the database file. */
export const DATABASE_LOCKS: LockMask = Lock.PENDING | Lock.RESERVED | Lock.SHARED;
/** Locks on the `-shm` file. */
export const SHM_LOCKS: LockMask = 0x1ff << 3;
/** WAL read marks 0..4. */
export const READ_LOCKS: LockMask = Lock.READ0 | Lock.READ1 | Lock.READ2 | Lock.READ3 | Lock.READ4;
/** Exclusive grants of these are what "writing" means; the fence refuses new ones. */
export const WRITER_LOCKS: LockMask = Lock.RESERVED | Lock.WRITE;

/** Names, in bit order, for messages and debugging. */
export const LOCK_NAMES: readonly string[] = [
  'PENDING', 'RESERVED', 'SHARED', 'WRITE', 'CKPT', 'RECOVER',
  'READ0', 'READ1', 'READ2', 'READ3', 'READ4', 'DMS',
];

/** Converts `databaseLocksInRange()` output to a LockMask. */
export function fromDatabaseLocks(mask: DbLockMask): LockMask {
  return mask & DATABASE_LOCKS;
}

/** Converts `shmLocksInRange()` output to a LockMask. */
export function fromShmLocks(mask: ShmLockMask): LockMask {
  return (mask << 3) & SHM_LOCKS;
}

/** "PENDING|SHARED" style text of a mask. */
export function formatLocks(mask: LockMask): string {
  const names: string[] = [];
  for (let i = 0; i < LOCK_COUNT; i++) if (mask & (1 << i)) names.push(LOCK_NAMES[i]!);
  return names.length === 0 ? 'none' : names.join('|');
}

/** F_GETLK answer types, with Linux's values so the FUSE layer can pass them on. */
export const LockQuery = {
  /** F_RDLCK: a reader blocks the request. */
  READ: 0,
  /** F_WRLCK: a writer blocks the request. */
  WRITE: 1,
  /** F_UNLCK: the request would be granted. */
  UNLOCKED: 2,
} as const;
export type LockQueryAnswer = (typeof LockQuery)[keyof typeof LockQuery];

/** The journal mode that decides what the internal write lock set holds. */
export type LockingMode = 'rollback' | 'wal';

/** One owner's holdings; `shared` and `exclusive` never share a bit. */
interface GuardSet {
  shared: LockMask;
  exclusive: LockMask;
}

const EMPTY_GUARD: Readonly<GuardSet> = Object.freeze({ shared: 0, exclusive: 0 });

/** Enough for every connection of a busy application without unbounded growth. */
const GUARD_POOL_LIMIT = 64;

/** Owner ids handed out by `newInternalOwner` (FUSE lock owners are u64, never negative). */
let nextInternalOwner = -1n;

/** A fresh owner id for LiteFS's own lock sets (apply, checkpoint, HALT, snapshot). */
export function newInternalOwner(): bigint {
  return nextInternalOwner--;
}

/**
 * The writer locks of `mask` a fence refuses to `g`: RESERVED, and WAL
 * WRITE when `g` holds a read mark, that it does not hold yet. SQLite
 * begins every WAL write transaction inside a read transaction (a READ
 * lock held shared), while a connection that finds the wal-index header
 * invalid takes WRITE before any read mark to rebuild it (walIndexRecover):
 * refusing that would leave every new reader failing with SQLITE_PROTOCOL.
 */
function fenceable(g: Readonly<GuardSet>, mask: LockMask): LockMask {
  let writer = mask & WRITER_LOCKS & ~g.exclusive;
  if ((g.shared & READ_LOCKS) === 0) writer &= ~Lock.WRITE;
  return writer;
}

/**
 * The lock state of one database: twelve RW mutexes and the guard sets of
 * every owner holding any of them.
 */
export class DatabaseLocks {
  private readonly guards = new Map<bigint, GuardSet>();
  private readonly pool: GuardSet[] = [];
  /** Reader count per mutex. */
  private readonly readers = new Int32Array(LOCK_COUNT);
  /** Mutexes with at least one reader. */
  private sharedHeld: LockMask = 0;
  /** Mutexes with two or more readers (so no reader may upgrade). */
  private multiShared: LockMask = 0;
  /** Mutexes held exclusively (by exactly one owner). */
  private exclusiveHeld: LockMask = 0;
  private fence = false;

  /** `deadline`: the node's lease fence (fence.ts); consulted only for a new writer grant. */
  constructor(private readonly deadline: WriteFence | null = null) {}

  // ---- requests from the FUSE layer (F_SETLK / F_GETLK / FLUSH) ----

  /**
   * F_SETLK F_WRLCK: take every lock in `mask` exclusively, all or nothing.
   * Upgrades a lock this owner holds shared when it is the only reader;
   * re-locking a lock it holds exclusively is a no-op. Refused (false, i.e.
   * EAGAIN) when another owner holds any of them, by the CKPT rule, or by the
   * fence.
   */
  tryLock(owner: bigint, mask: LockMask): boolean {
    if (mask === 0) return true;
    const g = this.guards.get(owner) ?? EMPTY_GUARD;
    if (this.writeBlockers(g, mask, true) !== 0) return false;
    this.grantExclusive(this.guardFor(owner, g), mask);
    return true;
  }

  /**
   * F_SETLK F_RDLCK: take every lock in `mask` shared, all or nothing. A lock
   * this owner holds exclusively is downgraded. Refused when another owner
   * holds any of them exclusively.
   */
  tryRLock(owner: bigint, mask: LockMask): boolean {
    if (mask === 0) return true;
    const g = this.guards.get(owner) ?? EMPTY_GUARD;
    if ((mask & this.exclusiveHeld & ~g.exclusive) !== 0) return false;
    this.grantShared(this.guardFor(owner, g), mask);
    return true;
  }

  /**
   * F_UNLCK: release whatever this owner holds of `mask`. Never fails. When
   * the owner holds WRITE exclusively and `mask` covers it, the caller must
   * run the WAL commit first: check `releasesWalWrite` before calling this.
   */
  unlock(owner: bigint, mask: LockMask): void {
    const g = this.guards.get(owner);
    if (g === undefined) return;
    const ex = mask & g.exclusive;
    const sh = mask & g.shared;
    if (ex !== 0) {
      this.exclusiveHeld &= ~ex;
      g.exclusive &= ~ex;
    }
    if (sh !== 0) {
      this.releaseShared(sh);
      g.shared &= ~sh;
    }
    if (g.shared === 0 && g.exclusive === 0) this.freeGuard(owner, g);
  }

  /**
   * True when unlocking `mask` would release WRITE that this owner holds
   * exclusively: the WAL commit signal (ref §6.4). The caller commits the
   * WAL transaction, then calls `unlock`, so that no checkpoint or other
   * writer can run between the commit and the release.
   */
  releasesWalWrite(owner: bigint, mask: LockMask): boolean {
    if ((mask & Lock.WRITE) === 0) return false;
    const g = this.guards.get(owner);
    return g !== undefined && (g.exclusive & Lock.WRITE) !== 0;
  }

  /** FLUSH on the database handle: release all of the owner's database-file locks. */
  releaseDatabaseLocks(owner: bigint): void {
    this.unlock(owner, DATABASE_LOCKS);
  }

  /**
   * FLUSH on the `-shm` handle: release all of the owner's `-shm` locks.
   * Check `releasesWalWrite(owner, SHM_LOCKS)` first, as for `unlock`.
   */
  releaseShmLocks(owner: bigint): void {
    this.unlock(owner, SHM_LOCKS);
  }

  /** Release everything the owner holds (internal owners, tests). */
  releaseAll(owner: bigint): void {
    this.unlock(owner, DATABASE_LOCKS | SHM_LOCKS);
  }

  /** Would `tryLock(owner, mask)` succeed? No side effects. */
  canLock(owner: bigint, mask: LockMask): boolean {
    return this.writeBlockers(this.guards.get(owner) ?? EMPTY_GUARD, mask, true) === 0;
  }

  /** Would `tryRLock(owner, mask)` succeed? No side effects. */
  canRLock(owner: bigint, mask: LockMask): boolean {
    const g = this.guards.get(owner) ?? EMPTY_GUARD;
    return (mask & this.exclusiveHeld & ~g.exclusive) === 0;
  }

  /**
   * F_GETLK (ref §4.5). A read query that would be refused answers WRITE; a
   * write query that would be refused answers WRITE when a blocker is held
   * exclusively and READ when only readers block it. Otherwise UNLOCKED.
   * The FUSE layer reports pid -1 for any blocker, as LiteFS does. The fence
   * is not reported here: it is a policy, not a lock another process holds.
   */
  query(owner: bigint, exclusive: boolean, mask: LockMask): LockQueryAnswer {
    const g = this.guards.get(owner) ?? EMPTY_GUARD;
    if (!exclusive) {
      return (mask & this.exclusiveHeld & ~g.exclusive) !== 0 ? LockQuery.WRITE : LockQuery.UNLOCKED;
    }
    const blockers = this.writeBlockers(g, mask, false);
    if (blockers === 0) return LockQuery.UNLOCKED;
    return (blockers & this.exclusiveHeld & ~g.exclusive) !== 0 ? LockQuery.WRITE : LockQuery.READ;
  }

  // ---- LiteFS's own lock sets ----

  /**
   * The write lock set of ref §5.3, all or nothing, for an internal owner
   * that holds nothing else. The result is what LiteFS's sequence ends with:
   * - rollback: PENDING, RESERVED and SHARED exclusive (SQLite's EXCLUSIVE:
   *   no readers, no writers);
   * - WAL: SHARED and DMS shared (so connections that merely have the
   *   database open do not block it), WRITE, CKPT, RECOVER and READ0..4
   *   exclusive (no WAL reader, writer, checkpointer or recovery).
   * In both modes the attempt also requires that PENDING is not held
   * exclusively by another owner, as LiteFS's "read PENDING first" does.
   * Ignores the fence: replica applies and recovery must still work; a caller
   * writing as primary (HALT) checks `fenced` itself.
   */
  tryAcquireWriteSet(owner: bigint, mode: LockingMode): boolean {
    if (mode === 'rollback') return this.tryAcquire(owner, 0, DATABASE_LOCKS, 0);
    return this.tryAcquire(
      owner,
      Lock.SHARED | Lock.DMS,
      Lock.WRITE | Lock.CKPT | Lock.RECOVER | READ_LOCKS,
      Lock.PENDING,
    );
  }

  /**
   * The snapshot/export read set of ref §5.6, all or nothing: SHARED on the
   * database file (after checking PENDING is readable); in WAL mode also
   * READ0..4 shared so no checkpoint can backfill or restart the WAL while
   * pages are copied. An export also keeps CKPT and RECOVER shared; a
   * snapshot only requires that they could be taken (LiteFS takes and
   * releases them, issue #339). Step 2 of §5.6 (WRITE exclusive for a moment
   * to capture a consistent WAL position) is separate: `tryLock(owner,
   * Lock.WRITE)` then `unlock(owner, Lock.WRITE)`.
   */
  tryAcquireReadSet(owner: bigint, mode: LockingMode, kind: 'snapshot' | 'export'): boolean {
    if (mode === 'rollback') return this.tryAcquire(owner, Lock.SHARED, 0, Lock.PENDING);
    if (kind === 'export') {
      return this.tryAcquire(owner, Lock.SHARED | Lock.CKPT | Lock.RECOVER | READ_LOCKS, 0, Lock.PENDING);
    }
    return this.tryAcquire(owner, Lock.SHARED | READ_LOCKS, 0, Lock.PENDING | Lock.CKPT | Lock.RECOVER);
  }

  /**
   * Atomically: `shared` taken shared, `exclusive` taken exclusively, and
   * `probe` merely checked to be readable. Nothing changes on refusal.
   */
  tryAcquire(owner: bigint, shared: LockMask, exclusive: LockMask, probe: LockMask): boolean {
    const g = this.guards.get(owner) ?? EMPTY_GUARD;
    if (((shared | probe) & ~exclusive & this.exclusiveHeld & ~g.exclusive) !== 0) return false;
    if (this.writeBlockers(g, exclusive, false) !== 0) return false;
    if ((shared | exclusive) === 0) return true;
    const guard = this.guardFor(owner, g);
    if (exclusive !== 0) this.grantExclusive(guard, exclusive);
    if ((shared & ~exclusive) !== 0) this.grantShared(guard, shared & ~exclusive);
    return true;
  }

  // ---- fencing (ARCHITECTURE §3.2) ----

  /**
   * While fenced, new exclusive grants of RESERVED or WAL WRITE (to an
   * owner inside a read transaction, see `fenceable`) to FUSE requests are
   * refused (EAGAIN); owners already holding them keep them and
   * can finish, commit and release. Used when a primary hands off; the
   * lease deadline (the WriteFence given to the constructor) fences the
   * same way by time.
   */
  setFenced(fenced: boolean): void {
    this.fence = fenced;
  }

  get fenced(): boolean {
    return this.fence;
  }

  /** True when `tryLock(owner, mask)` would be refused by a fence (explicit or the lease deadline) alone or among other reasons. */
  fencedFor(owner: bigint, mask: LockMask): boolean {
    const newWriter = fenceable(this.guards.get(owner) ?? EMPTY_GUARD, mask);
    return newWriter !== 0 && (this.fence || (this.deadline?.locksFenced() ?? false));
  }

  /** True while any owner holds RESERVED or WRITE exclusively (a write is in progress). */
  get writerActive(): boolean {
    return (this.exclusiveHeld & WRITER_LOCKS) !== 0;
  }

  // ---- introspection ----

  /** Locks `owner` holds shared. */
  sharedBy(owner: bigint): LockMask {
    return this.guards.get(owner)?.shared ?? 0;
  }

  /** Locks `owner` holds exclusively. */
  exclusiveBy(owner: bigint): LockMask {
    return this.guards.get(owner)?.exclusive ?? 0;
  }

  /** Number of readers of the lock `bit` (0 when unlocked or exclusive). */
  readerCount(bit: LockMask): number {
    return this.readers[31 - Math.clz32(bit)]!;
  }

  /** Locks somebody holds exclusively. */
  get exclusiveLocks(): LockMask {
    return this.exclusiveHeld;
  }

  /** Locks somebody holds shared. */
  get sharedLocks(): LockMask {
    return this.sharedHeld;
  }

  /** Owners holding at least one lock. */
  get ownerCount(): number {
    return this.guards.size;
  }

  /** The owners holding at least one lock. */
  owners(): IterableIterator<bigint> {
    return this.guards.keys();
  }

  // ---- internals ----

  /**
   * Locks of `mask` that stop `g` from holding all of `mask` exclusively:
   * held exclusively by someone else, or shared by anyone but `g` alone.
   * Adds WRITE for the CKPT rule and, if `fenced`, the writer locks.
   */
  private writeBlockers(g: Readonly<GuardSet>, mask: LockMask, applyFence: boolean): LockMask {
    let blockers =
      mask &
      ((this.exclusiveHeld & ~g.exclusive) | (this.sharedHeld & (~g.shared | this.multiShared)));
    // CKPT rule (ref §5.4): no checkpoint while anybody but this owner, holding
    // it exclusively, has WRITE: the frames may not have an LTX file yet. A
    // request that also takes WRITE is judged on WRITE itself.
    if (
      (mask & Lock.CKPT) !== 0 &&
      (mask & Lock.WRITE) === 0 &&
      (g.exclusive & Lock.WRITE) === 0 &&
      ((this.sharedHeld | this.exclusiveHeld) & Lock.WRITE) !== 0
    ) {
      blockers |= Lock.WRITE;
    }
    if (applyFence) {
      const newWriter = fenceable(g, mask);
      if (newWriter !== 0 && (this.fence || (this.deadline?.locksFenced() ?? false))) blockers |= newWriter;
    }
    return blockers;
  }

  private grantExclusive(g: GuardSet, mask: LockMask): void {
    const upgraded = mask & g.shared;
    if (upgraded !== 0) {
      // Only a sole reader gets here, so each count drops from 1 to 0.
      for (let m = upgraded; m !== 0; m &= m - 1) this.readers[31 - Math.clz32(m & -m)] = 0;
      this.sharedHeld &= ~upgraded;
      g.shared &= ~upgraded;
    }
    g.exclusive |= mask;
    this.exclusiveHeld |= mask;
  }

  private grantShared(g: GuardSet, mask: LockMask): void {
    const downgraded = mask & g.exclusive;
    if (downgraded !== 0) {
      this.exclusiveHeld &= ~downgraded;
      g.exclusive &= ~downgraded;
    }
    const added = mask & ~g.shared;
    for (let m = added; m !== 0; m &= m - 1) {
      const bit = m & -m;
      const n = ++this.readers[31 - Math.clz32(bit)]!;
      if (n === 2) this.multiShared |= bit;
    }
    this.sharedHeld |= added;
    g.shared |= added;
  }

  private releaseShared(mask: LockMask): void {
    for (let m = mask; m !== 0; m &= m - 1) {
      const bit = m & -m;
      const n = --this.readers[31 - Math.clz32(bit)]!;
      if (n === 1) this.multiShared &= ~bit;
      else if (n === 0) this.sharedHeld &= ~bit;
    }
  }

  /** The owner's registered guard set, registering one (from the pool) if `g` is the empty one. */
  private guardFor(owner: bigint, g: Readonly<GuardSet>): GuardSet {
    if (g !== EMPTY_GUARD) return g as GuardSet;
    const fresh = this.pool.pop() ?? { shared: 0, exclusive: 0 };
    this.guards.set(owner, fresh);
    return fresh;
  }

  private freeGuard(owner: bigint, g: GuardSet): void {
    this.guards.delete(owner);
    if (this.pool.length < GUARD_POOL_LIMIT) this.pool.push(g);
  }
}
