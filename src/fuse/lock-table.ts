/**
 * POSIX record locks (fcntl F_GETLK / F_SETLK / F_SETLKW) for one inode, as
 * the kernel forwards them to a FUSE daemon that negotiated FUSE_POSIX_LOCKS.
 *
 * Semantics follow fcntl(2) and Linux's fs/locks.c:
 * - locks belong to an owner (the FUSE lock_owner: one per process for
 *   classic POSIX locks, one per open file description for OFD locks);
 * - an owner never conflicts with itself, and a new lock replaces whatever
 *   the owner held on the same bytes (so a type change splits ranges);
 * - an owner's adjacent or overlapping ranges of the same type merge;
 * - read locks of different owners share, a write lock excludes all others;
 * - unlocking bytes that are not locked succeeds and changes nothing.
 *
 * Blocked F_SETLKW requests queue here; after every change the queue is
 * re-checked in FIFO order and each waiter that no longer conflicts is
 * granted (its lock applied) and reported once through takeGranted().
 *
 * Deadlocks: wouldDeadlock() finds the cycles Linux reports as EDEADLK when
 * they lie within this inode (the usual case: two processes locking ranges of
 * one file in opposite orders). Linux also follows cycles across inodes; one
 * table per inode cannot, so such a pair waits until a signal interrupts one
 * of them (INTERRUPT → cancelWait).
 *
 * Performance: SQLite holds a handful of locks per file and takes two per WAL
 * read transaction, so a flat array sorted by start, scanned linearly, beats
 * any tree here. The hot paths (test, trySet with no waiters) allocate at most
 * the new lock records.
 */

export const F_RDLCK = 0,
  F_WRLCK = 1,
  F_UNLCK = 2;

/** Linux's MAX_DEADLK_ITERATIONS: longer chains are not reported. */
const MAX_DEADLOCK_STEPS = 10;

export interface LockInfo {
  owner: bigint;
  pid: number;
  type: 0 | 1;
  start: number;
  /** Inclusive; Infinity = to end of file (and beyond). */
  end: number;
}

interface Waiter {
  waitId: bigint;
  owner: bigint;
  pid: number;
  type: 0 | 1;
  start: number;
  end: number;
}

const NONE_GRANTED: readonly bigint[] = Object.freeze([]);

export class LockTable {
  /** All owners' locks, sorted by start then owner; one owner's ranges never overlap. */
  private readonly locks: LockInfo[] = [];
  /** Blocked F_SETLKW requests, oldest first. */
  private waiters: Waiter[] = [];
  private granted: bigint[] = [];

  /**
   * F_GETLK: the conflicting lock of another owner with the lowest start, or
   * null. (When several owners conflict, Linux names the one first in its
   * own list order, which can differ; the holder's ranges come in order.)
   */
  test(owner: bigint, type: 0 | 1, start: number, end: number): LockInfo | null {
    checkRange(start, end);
    const found = this.findConflict(owner, type, start, end);
    return found === null ? null : { ...found };
  }

  /** F_SETLK: false means a conflict (EAGAIN); unlocking always succeeds. */
  trySet(owner: bigint, pid: number, type: 0 | 1 | 2, start: number, end: number): boolean {
    checkRange(start, end);
    if (type !== F_UNLCK && this.findConflict(owner, type, start, end) !== null) return false;
    this.apply(owner, pid, type, start, end);
    // A downgrade or an unlock may let a queued waiter through.
    this.grantWaiters();
    return true;
  }

  /** F_SETLKW: true = granted now; false = queued under waitId until granted or cancelled. */
  setOrWait(owner: bigint, pid: number, type: 0 | 1, start: number, end: number, waitId: bigint): boolean {
    checkRange(start, end);
    if (this.findConflict(owner, type, start, end) === null) {
      this.apply(owner, pid, type, start, end);
      this.grantWaiters();
      return true;
    }
    this.waiters.push({ waitId, owner, pid, type, start, end });
    return false;
  }

  /** INTERRUPT of a queued F_SETLKW: true if it was still queued (reply EINTR). */
  cancelWait(waitId: bigint): boolean {
    const i = this.waiters.findIndex((w) => w.waitId === waitId);
    if (i < 0) return false;
    this.waiters.splice(i, 1);
    this.grantWaiters();
    return true;
  }

  /**
   * FLUSH/RELEASE by this owner: drop all its locks. Its queued waits stay,
   * because they belong to requests still blocked in the kernel.
   */
  releaseOwner(owner: bigint): void {
    let kept = 0;
    for (const lock of this.locks) {
      if (lock.owner !== owner) this.locks[kept++] = lock;
    }
    if (kept === this.locks.length) return;
    this.locks.length = kept;
    this.grantWaiters();
  }

  /** waitIds granted (and already applied) since the last call; the caller replies 0 to each. */
  takeGranted(): readonly bigint[] {
    // The common case (nothing granted) is every lock request: no new array.
    if (this.granted.length === 0) return NONE_GRANTED;
    const out = this.granted;
    this.granted = [];
    return out;
  }

  /** True when no lock is held and nobody waits: the inode may drop its table. */
  isEmpty(): boolean {
    return this.locks.length === 0 && this.waiters.length === 0 && this.granted.length === 0;
  }

  /** Copies of the held locks, sorted by start (for diagnostics and tests). */
  snapshot(): LockInfo[] {
    return this.locks.map((l) => ({ ...l }));
  }

  /**
   * For F_SETLKW before queueing: true if waiting would close a cycle of
   * owners waiting for each other within this inode (reply EDEADLK instead).
   * Like Linux's posix_locks_deadlock, it follows the chain of first
   * conflicts: the holder blocking us, the holder blocking that holder's
   * queued request, and so on, for at most MAX_DEADLOCK_STEPS links.
   */
  wouldDeadlock(owner: bigint, type: 0 | 1, start: number, end: number): boolean {
    checkRange(start, end);
    let blocker = this.findConflict(owner, type, start, end);
    for (let step = 0; blocker !== null && step < MAX_DEADLOCK_STEPS; step++) {
      const holder = blocker.owner;
      const waiting = this.waiters.find((w) => w.owner === holder);
      if (waiting === undefined) return false;
      blocker = this.findConflict(waiting.owner, waiting.type, waiting.start, waiting.end);
      if (blocker !== null && blocker.owner === owner) return true;
    }
    return false;
  }

  /** Number of queued F_SETLKW requests. */
  waiting(): number {
    return this.waiters.length;
  }

  private findConflict(owner: bigint, type: 0 | 1, start: number, end: number): LockInfo | null {
    for (const lock of this.locks) {
      // Sorted by start: nothing further on can overlap.
      if (lock.start > end) break;
      if (lock.end < start || lock.owner === owner) continue;
      if (type === F_WRLCK || lock.type === F_WRLCK) return lock;
    }
    return null;
  }

  /**
   * Make [start, end] of owner's bytes exactly `type` (or unlocked): cut the
   * owner's existing ranges around it, insert the new range, and merge it with
   * the owner's same-type neighbours that touch it. Works in place: the table
   * is sorted by start, so only the few locks near [start, end] are visited.
   */
  private apply(owner: bigint, pid: number, type: 0 | 1 | 2, start: number, end: number): void {
    const locks = this.locks;
    let newStart = start;
    let newEnd = end;
    // Remainders of cut ranges; at most two (one each side).
    let left: LockInfo | null = null;
    let right: LockInfo | null = null;
    for (let i = 0; i < locks.length; ) {
      const lock = locks[i];
      if (lock.start > end + 1) break;
      if (lock.owner !== owner || lock.end + 1 < start) {
        i++;
        continue;
      }
      if (type !== F_UNLCK && lock.type === type) {
        // Same type, overlapping or adjacent: absorb it into the new range.
        if (lock.start < newStart) newStart = lock.start;
        if (lock.end > newEnd) newEnd = lock.end;
        locks.splice(i, 1);
        continue;
      }
      if (lock.start > end || lock.end < start) {
        i++; // merely adjacent, of another type: untouched
        continue;
      }
      // Different type (or unlock): keep only the parts outside [start, end].
      if (lock.start < start) left = { ...lock, end: start - 1 };
      if (lock.end > end) right = { ...lock, start: end + 1 };
      locks.splice(i, 1);
    }
    if (left !== null) insertSorted(locks, left);
    if (right !== null) insertSorted(locks, right);
    if (type !== F_UNLCK) insertSorted(locks, { owner, pid, type, start: newStart, end: newEnd });
  }

  private grantWaiters(): void {
    if (this.waiters.length === 0) return;
    // A grant can change what later (and, after a downgrade, earlier) waiters
    // see, so rescan from the oldest after each one.
    for (let i = 0; i < this.waiters.length; ) {
      const w = this.waiters[i];
      if (this.findConflict(w.owner, w.type, w.start, w.end) !== null) {
        i++;
        continue;
      }
      this.waiters.splice(i, 1);
      this.apply(w.owner, w.pid, w.type, w.start, w.end);
      this.granted.push(w.waitId);
      i = 0;
    }
  }
}

/** Keeps the table ordered by start, then owner (the order F_GETLK scans). */
function insertSorted(locks: LockInfo[], lock: LockInfo): void {
  let i = locks.length;
  while (i > 0 && comesAfter(locks[i - 1], lock)) i--;
  locks.splice(i, 0, lock);
}

function comesAfter(a: LockInfo, b: LockInfo): boolean {
  return a.start > b.start || (a.start === b.start && a.owner > b.owner);
}

function checkRange(start: number, end: number): void {
  if (!(start >= 0) || !(end >= start)) {
    throw new RangeError(`invalid lock range [${start}, ${end}]`);
  }
}
