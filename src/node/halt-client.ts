/**
 * A replica's HALT locks on the main thread (ref §8.4): the network side of
 * src/fs/halt-forwarding.ts. For each `<db>-lock` lock the FUSE thread asks
 * for, it takes the primary's HALT lock (`POST /halt`), waits until this
 * node has applied everything up to the position the primary gave, and
 * answers; it sends each transaction written under the lock (`POST /tx`)
 * and answers with the primary's verdict; and it releases the lock
 * (`DELETE /halt`) when the FUSE thread says so. The requests of one lock
 * run one after another, so a release never overtakes a forward.
 *
 * While held, the lock is renewed every `keepaliveMs` by asking for it again
 * (our primaries renew it then; a Go primary answers with the lock it holds).
 */
import { createReadStream } from 'node:fs';
import { NodeClient } from '../http/client.js';
import type { Pos } from '../http/posmap.js';
import { formatPos } from '../ltx/index.js';
import type { HaltAnswerCommand, HaltEvent } from '../store/messages.js';

export const HALT_REQUEST_TIMEOUT_MS = 10_000;
export const HALT_FORWARD_TIMEOUT_MS = 30_000;
export const HALT_KEEPALIVE_MS = 10_000;
const RELEASE_TIMEOUT_MS = 5_000;

export interface HaltClientOptions {
  /** Answers the FUSE thread. */
  readonly tell: (cmd: HaltAnswerCommand) => void;
  /** The primary's advertise URL, or null while none is known. */
  readonly primaryURL: () => string | null;
  readonly nodeID: bigint;
  readonly clusterID: () => string;
  /** This node's position of a database, as its `tx` events tell. */
  readonly position: (db: string) => Pos | undefined;
  /** Resolves at the next position change, or after `ms`. */
  readonly changed: (ms: number) => Promise<void>;
  readonly log: (line: string) => void;
  readonly requestTimeoutMs?: number;
  readonly forwardTimeoutMs?: number;
  readonly keepaliveMs?: number;
}

interface Lock {
  readonly db: string;
  readonly lockID: bigint;
  /** The primary's client while the lock is (being) held there. */
  client: NodeClient | null;
  keepalive: NodeJS.Timeout | null;
  /** The last request of this lock: the next one starts after it. */
  chain: Promise<void>;
}

export class HaltClient {
  private readonly locks = new Map<string, Lock>();

  constructor(private readonly o: HaltClientOptions) {}

  onEvent(ev: HaltEvent): void {
    const key = `${ev.db}\0${ev.lockID}`;
    let lock = this.locks.get(key);
    if (lock === undefined) {
      if (ev.type !== 'haltRequest') return;
      lock = { db: ev.db, lockID: BigInt(ev.lockID), client: null, keepalive: null, chain: Promise.resolve() };
      this.locks.set(key, lock);
    }
    const l = lock;
    const step = async (): Promise<void> => {
      if (ev.type === 'haltRequest') {
        // Refused: the FUSE thread forgot the lock already.
        if (!(await this.acquire(l))) this.locks.delete(key);
      } else if (ev.type === 'haltForward') {
        await this.forward(l, ev.path, ev.txid);
      } else {
        await this.release(l);
        this.locks.delete(key);
      }
    };
    l.chain = l.chain.then(step).catch((err: unknown) => this.o.log(`${ev.db}: HALT lock ${ev.lockID}: ${message(err)}`));
  }

  /** Releases every lock still held (shutdown). */
  async close(): Promise<void> {
    await Promise.all(
      [...this.locks.values()].map(async (l) => {
        await l.chain;
        await this.release(l);
      }),
    );
    this.locks.clear();
  }

  /** False when the lock could not be had (the FUSE thread is told why). */
  private async acquire(l: Lock): Promise<boolean> {
    const answer = (ok: boolean, text: string): boolean => {
      this.o.tell({ type: 'haltGranted', db: l.db, lockID: l.lockID.toString(), ok, message: text });
      return ok;
    };
    const url = this.o.primaryURL();
    if (url === null) return answer(false, 'no primary available');
    const client = new NodeClient(url, { nodeID: this.o.nodeID, clusterID: this.o.clusterID });
    l.client = client;
    const signal = AbortSignal.timeout(this.o.requestTimeoutMs ?? HALT_REQUEST_TIMEOUT_MS);
    try {
      const lock = await client.acquireHaltLock(l.db, l.lockID, signal);
      await this.catchUp(l.db, lock.pos, signal);
    } catch (err) {
      await this.release(l);
      return answer(false, message(err));
    }
    l.keepalive = setInterval(() => {
      client.acquireHaltLock(l.db, l.lockID, AbortSignal.timeout(RELEASE_TIMEOUT_MS)).catch((err: unknown) => this.o.log(`${l.db}: renewing HALT lock ${l.lockID}: ${message(err)}`));
    }, this.o.keepaliveMs ?? HALT_KEEPALIVE_MS);
    l.keepalive.unref();
    return answer(true, '');
  }

  /** Waits until this node is at `target` (the primary's position when it halted): writes start from exactly there. */
  private async catchUp(db: string, target: Pos, signal: AbortSignal): Promise<void> {
    for (;;) {
      const local = this.o.position(db) ?? { txid: 0n, postApplyChecksum: 0n };
      if (local.txid === target.txid) {
        if (local.postApplyChecksum === target.postApplyChecksum) return;
        throw new Error(`local position ${formatPos(local)} differs from the primary's ${formatPos(target)}`);
      }
      if (local.txid > target.txid) throw new Error(`local position ${formatPos(local)} is ahead of the primary's ${formatPos(target)}`);
      if (signal.aborted) throw new Error(`timed out catching up with the primary's position ${formatPos(target)} (at ${formatPos(local)})`);
      await this.o.changed(50);
    }
  }

  private async forward(l: Lock, path: string, txid: string): Promise<void> {
    const answer = (ok: boolean, text: string): void => this.o.tell({ type: 'haltForwarded', db: l.db, lockID: l.lockID.toString(), txid, ok, message: text });
    if (l.client === null) return answer(false, 'the HALT lock is not held');
    try {
      await l.client.commit(l.db, l.lockID, createReadStream(path), AbortSignal.timeout(this.o.forwardTimeoutMs ?? HALT_FORWARD_TIMEOUT_MS));
    } catch (err) {
      return answer(false, message(err));
    }
    answer(true, '');
  }

  private async release(l: Lock): Promise<void> {
    if (l.keepalive !== null) clearInterval(l.keepalive);
    l.keepalive = null;
    const client = l.client;
    l.client = null;
    if (client === null) return;
    try {
      await client.releaseHaltLock(l.db, l.lockID, AbortSignal.timeout(RELEASE_TIMEOUT_MS));
    } catch (err) {
      // The primary lets it expire.
      this.o.log(`${l.db}: releasing HALT lock ${l.lockID} on the primary: ${message(err)}`);
    } finally {
      client.close();
    }
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
