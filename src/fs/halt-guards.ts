/**
 * The primary's side of HALT locks (ref §8.2) on the FUSE thread. A
 * replica's lock holds the database's whole write lock set under an internal
 * owner: every local SQLite lock request is refused (EAGAIN, so SQLite's busy
 * handler waits) until the replica releases it or it expires (the main thread
 * keeps the clock: src/node/halt-service.ts). The replica's forwarded
 * transactions are applied under that same set (replica-apply.ts, `heldBy`).
 */
import { formatHex16 } from '../ltx/index.js';
import { journalHasMagic } from '../store/commit-journal.js';
import type { DB } from '../store/db.js';
import { newInternalOwner } from '../store/locks.js';
import type { HaltLockCommand, HaltUnlockCommand, StoreCommandResult } from '../store/messages.js';
import type { Store } from '../store/store.js';

interface Guard {
  readonly lockID: bigint;
  readonly owner: bigint;
}

/**
 * How long after a `busy` answer the lock set still counts as wanted: the
 * main thread retries every few milliseconds, and stops after its timeout.
 */
const WANTED_FOR_MS = 100;

export class HaltGuards {
  private readonly held = new Map<string, Guard>();
  /** When each database's lock set was last asked for and busy. */
  private readonly wantedAt = new Map<string, number>();

  constructor(
    private readonly store: Store,
    /** A guard released `db`'s write lock set (lock requests parked meanwhile may be answered). */
    private readonly released: (db: DB) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * True while a replica's HALT lock waits for `db`'s lock set: new lock
   * requests that would keep it from being taken are refused (EAGAIN, as
   * while a replica apply waits), so a stream of overlapping readers on the
   * primary cannot starve it.
   */
  wants(db: string): boolean {
    if (this.wantedAt.size === 0) return false;
    const at = this.wantedAt.get(db);
    if (at === undefined) return false;
    if (this.now() - at < WANTED_FOR_MS) return true;
    this.wantedAt.delete(db);
    return false;
  }

  /** `busy` while SQLite transactions or another replica's HALT lock hold the set: the main thread retries. */
  lock(cmd: HaltLockCommand): StoreCommandResult {
    const lockID = BigInt(cmd.lockID);
    const db = this.store.db(cmd.db) ?? this.store.createDB(cmd.db);
    const current = this.held.get(db.name);
    // A retried request (its answer was lost): the same lock, still held.
    if (current?.lockID === lockID) return this.ok(cmd.id, db);
    if (current !== undefined) return { type: 'commandResult', id: cmd.id, status: 'busy' };
    const owner = newInternalOwner();
    if (!db.locks.tryAcquireWriteSet(owner, db.mode)) {
      this.wantedAt.set(db.name, this.now());
      return { type: 'commandResult', id: cmd.id, status: 'busy' };
    }
    this.wantedAt.delete(db.name);
    // A client killed mid-transaction left its journal: the first SQLite
    // connection rolls it back. Pages applied now would be undone by it.
    if (db.io.exists(db.journalPath) && journalHasMagic(db)) {
      db.locks.releaseAll(owner);
      return { type: 'commandResult', id: cmd.id, status: 'error', message: `${db.name} has a hot journal; open the database once on the primary to roll it back` };
    }
    this.held.set(db.name, { lockID, owner });
    return this.ok(cmd.id, db);
  }

  /** Releases the lock if `cmd.lockID` holds it; answered `ok` either way (LiteFS's DELETE /halt). */
  unlock(cmd: HaltUnlockCommand): StoreCommandResult {
    const current = this.held.get(cmd.db);
    if (current?.lockID === BigInt(cmd.lockID)) this.release(cmd.db, current);
    return { type: 'commandResult', id: cmd.id, status: 'ok', inodes: [] };
  }

  /** The owner holding `db`'s write lock set for HALT lock `lockID`, if that lock is held. */
  ownerOf(db: string, lockID: bigint): bigint | undefined {
    const current = this.held.get(db);
    return current?.lockID === lockID ? current.owner : undefined;
  }

  /** This node stopped being the primary: the locks it held for replicas mean nothing now. */
  releaseAll(): void {
    for (const [db, guard] of [...this.held]) this.release(db, guard);
  }

  private release(name: string, guard: Guard): void {
    this.held.delete(name);
    const db = this.store.db(name);
    if (db === undefined) return;
    db.locks.releaseAll(guard.owner);
    this.released(db);
  }

  private ok(id: number, db: DB): StoreCommandResult {
    return { type: 'commandResult', id, status: 'ok', inodes: [], pos: { txid: formatHex16(db.pos.txid), checksum: formatHex16(db.pos.postApplyChecksum) } };
  }
}
