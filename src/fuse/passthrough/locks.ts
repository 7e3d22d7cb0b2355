/**
 * POSIX record locks of the passthrough: one LockTable per inode (the FUSE
 * layer is the only lock authority once FUSE_POSIX_LOCKS is negotiated),
 * plus the blocked F_SETLKW requests, answered when granted or interrupted.
 */
import { Errno, FuseError } from '../errors.js';
import { LockTable } from '../lock-table.js';

export class InodeLocks {
  private readonly tables = new Map<number, LockTable>();
  /** Deferred SETLKW unique → inode. */
  private readonly waits = new Map<number, number>();

  /** @param grant answers a deferred SETLKW (by its request unique) with success. */
  constructor(private readonly grant: (unique: number) => void) {}

  /** A conflicting lock of another owner, or null. */
  test(ino: number, owner: bigint, type: 0 | 1, start: number, end: number): { type: number; start: number; end: number; pid: number } | null {
    return this.tables.get(ino)?.test(owner, type, start, end) ?? null;
  }

  /** F_SETLK (and unlock by any means): false = conflict. */
  trySet(ino: number, owner: bigint, pid: number, type: 0 | 1 | 2, start: number, end: number): boolean {
    if (type === 2 && !this.tables.has(ino)) return true;
    const t = this.table(ino);
    const ok = t.trySet(owner, pid, type, start, end);
    this.settle(ino, t);
    return ok;
  }

  /** F_SETLKW: true = granted now; false = queued under `unique`; EDEADLK if waiting would close a cycle. */
  setOrWait(ino: number, owner: bigint, pid: number, type: 0 | 1, start: number, end: number, unique: number): boolean {
    const t = this.table(ino);
    if (t.wouldDeadlock(owner, type, start, end)) {
      if (t.isEmpty()) this.tables.delete(ino);
      throw new FuseError(Errno.EDEADLK);
    }
    const granted = t.setOrWait(owner, pid, type, start, end, BigInt(unique));
    if (!granted) this.waits.set(unique, ino);
    this.settle(ino, t);
    return granted;
  }

  /** INTERRUPT of a queued SETLKW: true if it was waiting (answer EINTR). */
  cancel(unique: number): boolean {
    const ino = this.waits.get(unique);
    if (ino === undefined) return false;
    this.waits.delete(unique);
    const t = this.tables.get(ino);
    if (t === undefined) return false;
    const cancelled = t.cancelWait(BigInt(unique));
    this.settle(ino, t);
    return cancelled;
  }

  /** FLUSH/RELEASE: every lock of `owner` on `ino` ends. */
  releaseOwner(ino: number, owner: bigint): void {
    const t = this.tables.get(ino);
    if (t === undefined) return;
    t.releaseOwner(owner);
    this.settle(ino, t);
  }

  /** Number of inodes with locks or waiters (for tests). */
  get activeInodes(): number {
    return this.tables.size;
  }

  private table(ino: number): LockTable {
    let t = this.tables.get(ino);
    if (t === undefined) {
      t = new LockTable();
      this.tables.set(ino, t);
    }
    return t;
  }

  /** Answers waiters the last change granted and drops an empty table. */
  private settle(ino: number, t: LockTable): void {
    for (const id of t.takeGranted()) {
      const unique = Number(id);
      this.waits.delete(unique);
      this.grant(unique);
    }
    if (t.isEmpty()) this.tables.delete(ino);
  }
}
