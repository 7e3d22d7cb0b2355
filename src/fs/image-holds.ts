/**
 * Read lock sets held for the main thread while it copies a database's image
 * for a snapshot or an export (ref §5.6; the `imageHold` command in
 * store/messages.ts). The copy itself happens on the main thread, from the
 * data directory: these holds only keep the files it reads consistent with
 * the position captured here.
 *
 * A hold is taken at a commit boundary only. Rollback mode: SHARED on the
 * database, so no writer can reach EXCLUSIVE and change the database file.
 * WAL mode: SHARED and READ0..4 shared, so a checkpoint backfills no frame
 * past the captured ones and no writer restarts the WAL; and WAL WRITE must
 * be free at that moment, so the store's committed frames are all the
 * frames any reader's mark can name (a checkpointer trusts those marks).
 * A request that cannot be granted yet waits here, retried after every
 * FUSE request, for up to HOLD_WAIT_MS; then it is answered `busy`.
 *
 * In rollback mode a writer's EXCLUSIVE request that only the hold refuses
 * is parked (answered at the release) rather than refused: the copy is
 * local and short, and EAGAIN would fail a writer without a busy timeout.
 * In WAL mode writers never wait; a checkpointer or reader refused a read
 * mark retries or falls back as SQLite does for any reader.
 */
import { formatHex16 } from '../ltx/index.js';
import type { DB } from '../store/db.js';
import { Lock, type LockMask, newInternalOwner } from '../store/locks.js';
import type { HeldImageFacts, ImageHoldCommand, ImageReleaseCommand, StoreCommandResult } from '../store/messages.js';
import type { Store } from '../store/store.js';

/** How long a hold request waits for a transaction to end before it is answered `busy`. */
export const HOLD_WAIT_MS = 2_000;

interface Held {
  readonly db: string;
  readonly owner: bigint;
}

interface Waiting {
  readonly cmd: ImageHoldCommand;
  readonly since: number;
}

export class ImageHolds {
  private readonly held = new Map<number, Held>();
  private waiting: Waiting[] = [];

  constructor(
    private readonly store: Store,
    private readonly post: (result: StoreCommandResult) => void,
    /** A hold released `db`'s locks (lock requests parked meanwhile may be answered). */
    private readonly released: (db: DB) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  request(cmd: ImageHoldCommand): void {
    if (!this.tryAnswer(cmd)) this.waiting.push({ cmd, since: this.now() });
  }

  /** Called after every FUSE request: a transaction may have ended. */
  poll(): void {
    if (this.waiting.length === 0) return;
    const now = this.now();
    this.waiting = this.waiting.filter(({ cmd, since }) => {
      if (this.tryAnswer(cmd)) return false;
      if (now - since < HOLD_WAIT_MS) return true;
      this.post({ type: 'commandResult', id: cmd.id, status: 'busy' });
      return false;
    });
  }

  /** Frees a hold; a request still waiting is answered `busy` (the main thread gave up on it). */
  release(cmd: ImageReleaseCommand): void {
    const waiting = this.waiting.find((w) => w.cmd.holdID === cmd.holdID);
    if (waiting !== undefined) {
      this.waiting = this.waiting.filter((w) => w !== waiting);
      this.post({ type: 'commandResult', id: waiting.cmd.id, status: 'busy' });
      return;
    }
    const hold = this.held.get(cmd.holdID);
    if (hold === undefined) return;
    this.held.delete(cmd.holdID);
    const db = this.store.db(hold.db);
    if (db === undefined) return;
    db.locks.releaseAll(hold.owner);
    // Writers parked behind several holds (replicas joining together) wait for the last one.
    if (!this.holding(db.name)) this.released(db);
  }

  private holding(db: string): boolean {
    for (const h of this.held.values()) if (h.db === db) return true;
    return false;
  }

  /**
   * True when `owner`'s lock request on `db` should wait for a hold's
   * release: rollback mode, EXCLUSIVE, and refused now.
   */
  parks(db: DB, owner: bigint, mask: LockMask, exclusive: boolean): boolean {
    if (!exclusive || db.mode !== 'rollback' || (mask & Lock.SHARED) === 0) return false;
    if (!this.holding(db.name)) return false;
    return !db.locks.canLock(owner, mask);
  }

  /** How many holds are in place (tests). */
  get count(): number {
    return this.held.size;
  }

  /** True once `cmd` is answered (held, or refused for good). */
  private tryAnswer(cmd: ImageHoldCommand): boolean {
    const db = this.store.db(cmd.db);
    if (db === undefined) {
      this.post({ type: 'commandResult', id: cmd.id, status: 'error', message: `database not found: ${cmd.db}` });
      return true;
    }
    const owner = newInternalOwner();
    if (!db.locks.tryAcquireReadSet(owner, db.mode, 'snapshot')) return false;
    if (db.mode === 'wal' && (db.locks.exclusiveLocks & Lock.WRITE) !== 0) {
      db.locks.releaseAll(owner);
      return false;
    }
    // Pages written without a commit and no writer holding the database: a
    // client died mid-transaction and the next connection rolls it back.
    if (db.mode === 'rollback' && db.dirty.size > 0) {
      db.locks.releaseAll(owner);
      this.post({
        type: 'commandResult',
        id: cmd.id,
        status: 'error',
        message: `${db.name} has a hot journal; open the database once on this node to roll it back`,
      });
      return true;
    }
    this.held.set(cmd.holdID, { db: db.name, owner });
    this.post({ type: 'commandResult', id: cmd.id, status: 'ok', inodes: [], image: facts(db) });
    return true;
  }
}

function facts(db: DB): HeldImageFacts {
  return {
    txid: formatHex16(db.pos.txid),
    checksum: formatHex16(db.pos.postApplyChecksum),
    pageSize: db.pageSize,
    pageCount: db.pageN,
    walFrames: db.mode === 'wal' ? new Map(db.wal.frameOffsets) : new Map(),
  };
}
