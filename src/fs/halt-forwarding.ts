/**
 * A replica's side of HALT locks (ref §8.3, §8.4) on the FUSE thread: the
 * `<db>-lock` file's lock, and the transactions written under it.
 *
 * A blocking write lock (F_SETLKW / F_OFD_SETLKW F_WRLCK) on byte 72 of
 * `<db>-lock` waits while the main thread takes the primary's HALT lock and
 * this node catches up to the primary's position; then the database is
 * writable here. Each commit is held back until the primary applied it
 * (store/forward.ts): the request that would make it durable for SQLite
 * waits for the `haltForwarded` answer, and a refusal fails it with EIO, so
 * SQLite rolls the transaction back and this node never holds a transaction
 * the primary lacks. Unlocking, closing the handle (FLUSH) or interrupting
 * the wait ends the lock; the main thread releases it on the primary after
 * any request still in flight. A program may also ask through the node API
 * (`litefs run -with-halt-lock-on`): the same lock, with a holder of its own.
 *
 * Where it differs from LiteFS: a second holder asking for a lock another
 * one holds gets EAGAIN at once (LiteFS waits 10 s for the primary to
 * refuse it); when the lock ends, the database is brought back to its last
 * LTX file if anything is left that never committed (a hot journal after a
 * refused commit), as at a step-down.
 */
import { Errno, FuseError } from '../fuse/errors.js';
import { DEFERRED, type Deferred } from '../fuse/handler.js';
import { formatHex16 } from '../ltx/index.js';
import type { DB } from '../store/db.js';
import type { StagedTx } from '../store/forward.js';
import type { HaltAnswerCommand, StoreEvent } from '../store/messages.js';

/**
 * Who holds a lock: `fh:<n>` for a `<db>-lock` handle, `api:<lockID>` for a
 * program that asked through the node API (`litefs run -with-halt-lock-on`).
 */
export type HaltHolder = string;

/** A request waiting for the primary's answer. */
interface Waiter {
  /** The FUSE request (interruptible), or null for a node API request. */
  readonly unique: number | null;
  /** Answers it: 0 once held, else an errno (and the primary's reason, when it refused). */
  readonly done: (errno: number, why?: string) => void;
}

interface Halt {
  readonly lockID: bigint;
  readonly holder: HaltHolder;
  /** The request waiting for the primary; null once the lock is held. */
  waiting: Waiter | null;
}

interface Forward {
  readonly staged: StagedTx;
  /** Runs once the primary answered: commit (ok) or refuse the held-back request. */
  readonly finish: (ok: boolean) => void;
}

export interface HaltForwardingDeps {
  post(event: StoreEvent): void;
  log(line: string): void;
  /** A HALT lock on `db` ended: bring the database back to its last LTX file once no transaction runs. */
  recover(db: string): void;
  /** Removes a staged file. */
  unlink(path: string): void;
}

export class HaltForwarding {
  private readonly halts = new Map<string, Halt>();
  private readonly forwards = new Map<string, Forward>();

  constructor(private readonly deps: HaltForwardingDeps) {}

  /** True while this node holds the primary's HALT lock on `db`: it may write, and forwards its commits. */
  holds(db: string): boolean {
    if (this.halts.size === 0) return false;
    const h = this.halts.get(db);
    return h !== undefined && h.waiting === null;
  }

  /**
   * F_SETLKW F_WRLCK on `<db>-lock` (or its node API equivalent) by
   * `holder`, with lock id `lockID`: `waiter` is answered once the primary's
   * lock is held or refused.
   */
  acquire(db: string, holder: HaltHolder, lockID: bigint, waiter: Waiter): Deferred {
    const current = this.halts.get(db);
    // The same holder again (LiteFS: ENOLCK); another holder's lock is not shared.
    if (current?.holder === holder) throw new FuseError(Errno.ENOLCK);
    if (current !== undefined) throw new FuseError(Errno.EAGAIN);
    this.halts.set(db, { lockID, holder, waiting: waiter });
    this.deps.post({ type: 'haltRequest', db, lockID: lockID.toString() });
    return DEFERRED;
  }

  /** The main thread's answer to `haltRequest`. */
  granted(cmd: HaltAnswerCommand): void {
    const h = this.halts.get(cmd.db);
    // Released or interrupted meanwhile: the main thread releases it on the primary.
    if (h === undefined || h.lockID.toString() !== cmd.lockID || h.waiting === null) return;
    const waiter = h.waiting;
    if (cmd.ok) {
      h.waiting = null;
      this.deps.log(`${cmd.db}: HALT lock ${cmd.lockID} held on the primary: writes allowed here`);
      waiter.done(0);
      return;
    }
    this.halts.delete(cmd.db);
    this.deps.log(`${cmd.db}: HALT lock refused: ${cmd.message}`);
    waiter.done(Errno.EIO, cmd.message);
  }

  /** Unlock, or FLUSH of the handle (any close of it ends the lock, as in LiteFS), or the node API request ended. */
  release(db: string, holder: HaltHolder): void {
    const h = this.halts.get(db);
    if (h?.holder !== holder) return;
    h.waiting?.done(Errno.EINTR);
    this.end(db, h);
  }

  /** An interrupted lock wait ends the lock (answered EINTR by the session); false if `unique` is not one. */
  interrupt(unique: number): boolean {
    for (const [db, h] of this.halts) {
      if (h.waiting === null || h.waiting.unique !== unique) continue;
      this.end(db, h);
      return true;
    }
    return false;
  }

  /**
   * Sends a staged transaction to the primary; `finish` runs with its
   * answer. One per database at a time: its writer holds the locks.
   * Forwards are not interruptible: the primary may have applied one already.
   */
  forward(db: DB, staged: StagedTx, finish: (ok: boolean) => void): void {
    const lockID = this.halts.get(db.name)?.lockID;
    if (lockID === undefined || this.forwards.has(db.name)) throw new Error(`${db.name}: no HALT lock to forward a transaction under`);
    this.forwards.set(db.name, { staged, finish });
    this.deps.post({ type: 'haltForward', db: db.name, lockID: lockID.toString(), path: staged.path, txid: formatHex16(staged.txid) });
  }

  /** The main thread's answer to `haltForward`. */
  forwarded(cmd: HaltAnswerCommand): void {
    const f = this.forwards.get(cmd.db);
    if (f === undefined || formatHex16(f.staged.txid) !== cmd.txid) return;
    this.forwards.delete(cmd.db);
    this.deps.unlink(f.staged.path);
    if (!cmd.ok) this.deps.log(`${cmd.db}: refused (EIO): TXID ${cmd.txid ?? '?'} written under the HALT lock: the primary did not apply it: ${cmd.message}`);
    f.finish(cmd.ok);
  }

  private end(db: string, h: Halt): void {
    this.halts.delete(db);
    this.deps.post({ type: 'haltRelease', db, lockID: h.lockID.toString() });
    if (h.waiting === null) this.deps.recover(db);
  }
}
