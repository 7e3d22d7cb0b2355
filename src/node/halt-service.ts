/**
 * The primary's HALT locks on the main thread (ref §8.2): `POST /halt`,
 * `DELETE /halt` and `POST /tx`. The FUSE thread holds the write lock sets
 * (src/fs/halt-guards.ts); this side keeps the clock. A lock not renewed
 * within HALT_LOCK_TTL_MS is released (LiteFS checks every 5 s); unlike
 * LiteFS, every forwarded transaction and every repeated `POST /halt` with
 * the same id renews it, so a replica's migration may run longer than the
 * TTL as long as it keeps writing or asking (ours asks every 10 s). And a
 * lock whose replica has not streamed from this node for
 * HOLDER_GONE_MS (a replica that died holding it: a restarted one streams
 * under a new node id) is released then, not after the TTL: the primary's
 * own clients wait for every lock meanwhile.
 *
 * Also unlike LiteFS, `POST /tx` is refused unless its `lockID` holds the
 * database's lock (LiteFS leaves the check as a TODO: only the position
 * guards it), and a file shaped as a snapshot (TXID 1) is taken only for an
 * empty database.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiError } from '../http/api.js';
import type { HaltLock } from '../http/halt-lock.js';
import { formatHex16, isSnapshot, parseChecksum, parseTXID } from '../ltx/index.js';
import { isValidDatabaseName } from '../store/db.js';
import type { Pos } from '../http/posmap.js';
import { receiveLTX } from './ltx-receiver.js';
import type { StoreChannel } from './store-channel.js';

/** How long an acquisition waits for local SQLite transactions to end (LiteFS's HaltAcquireTimeout). */
export const HALT_ACQUIRE_TIMEOUT_MS = 10_000;
/** How long a granted lock lasts unless renewed (LiteFS's HaltLockTTL). */
export const HALT_LOCK_TTL_MS = 30_000;
const ACQUIRE_RETRY_MS = 5;
/** A lock whose replica has streamed from no connection for this long is released. */
export const HOLDER_GONE_MS = 5_000;
/** How often the holders' streams are looked at. */
const HOLDER_CHECK_MS = 1_000;

export interface HaltServiceOptions {
  readonly channel: StoreChannel;
  /** `data.dir`: forwarded files are received into `<data>/tmp/`. */
  readonly dataDir: string;
  readonly isPrimary: () => boolean;
  /** This node's position of a database (undefined: none). */
  readonly position: (db: string) => Pos | undefined;
  readonly log: (line: string) => void;
  /** True while the replica with this node id streams from this node (the lock holder is alive). */
  readonly isStreaming?: (nodeID: bigint) => boolean;
  readonly ttlMs?: number;
  readonly acquireTimeoutMs?: number;
  readonly holderGoneMs?: number;
  readonly holderCheckMs?: number;
}

interface Granted {
  readonly lockID: bigint;
  /** The requesting replica's node id (0: unknown). */
  readonly holder: bigint;
  timer: NodeJS.Timeout;
  /** Since when the holder has not been streaming (null: it is). */
  goneSince: number | null;
}

export class HaltService {
  private readonly granted = new Map<string, Granted>();
  private watch: NodeJS.Timeout | null = null;

  constructor(private readonly o: HaltServiceOptions) {}

  async acquire(name: string, lockID: bigint, signal: AbortSignal, requester = 0n): Promise<HaltLock> {
    this.checkPrimary();
    if (!isValidDatabaseName(name)) throw new ApiError(400, `invalid database name: ${name}`);
    if (lockID === 0n) throw new Error('invalid lock id');
    const deadline = Date.now() + (this.o.acquireTimeoutMs ?? HALT_ACQUIRE_TIMEOUT_MS);
    for (;;) {
      const result = await this.o.channel.request({ type: 'haltLock', db: name, lockID: lockID.toString() });
      if (result.status === 'ok' && result.pos !== undefined) {
        const expires = this.renew(name, lockID, requester);
        return { id: lockID, pos: { txid: parseTXID(result.pos.txid), postApplyChecksum: parseChecksum(result.pos.checksum) }, expires };
      }
      if (result.status === 'error') throw new Error(result.message);
      if (Date.now() > deadline) throw new Error(`timed out: ${name} stayed locked by other transactions`);
      if (signal.aborted) throw new Error('request cancelled');
      await new Promise((r) => setTimeout(r, ACQUIRE_RETRY_MS));
    }
  }

  async release(name: string, lockID: bigint): Promise<void> {
    const g = this.granted.get(name);
    if (g?.lockID === lockID) this.forget(name, g);
    // Sent whatever this side remembers: the FUSE thread checks the id itself.
    await this.o.channel.request({ type: 'haltUnlock', db: name, lockID: lockID.toString() });
  }

  async applyTx(name: string, lockIDText: string, body: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<void> {
    this.checkPrimary();
    if (!/^-?\d+$/.test(lockIDText)) throw new ApiError(400, `invalid lock id: ${lockIDText}`);
    const lockID = BigInt(lockIDText);
    if (this.granted.get(name)?.lockID !== lockID) throw new ApiError(409, `halt lock ${lockIDText} is not held on ${name}`);
    const received = await receiveLTX(body as AsyncIterable<Buffer>, join(this.o.dataDir, 'tmp'));
    try {
      // TXID 1 (a snapshot by its shape) is a new database's first transaction: only onto an empty one.
      if (isSnapshot(received.header) && (this.o.position(name)?.txid ?? 0n) !== 0n) {
        throw new ApiError(400, `a forwarded transaction must continue ${name}'s position, not replace it (TXID 1)`);
      }
      if (signal.aborted) throw new Error('request cancelled');
      const result = await this.o.channel.request({
        type: 'apply',
        db: name,
        paths: [received.path],
        quarantine: null,
        syncDatabase: true,
        haltLockID: lockID.toString(),
      });
      // 500, as LiteFS answers a forwarded file it cannot apply.
      if (result.status !== 'ok') throw new ApiError(500, `apply forwarded transaction: ${result.status === 'error' ? result.message : 'busy'}`);
      this.o.log(`${name}: applied TXID ${formatHex16(received.header.maxTXID)} forwarded under HALT lock ${lockIDText}`);
      this.renew(name, lockID, this.granted.get(name)?.holder ?? 0n);
    } finally {
      // Applied files were moved into ltx/; anything left here is ours.
      await rm(received.path, { force: true });
    }
  }

  /** Forgets every lock's clock (shutdown; the FUSE thread drops the locks with the mount). */
  close(): void {
    for (const [name, g] of [...this.granted]) this.forget(name, g);
  }

  private renew(name: string, lockID: bigint, holder: bigint): number {
    const ttl = this.o.ttlMs ?? HALT_LOCK_TTL_MS;
    const old = this.granted.get(name);
    if (old !== undefined) clearTimeout(old.timer);
    const timer = setTimeout(() => this.expire(name, lockID, `expired after ${ttl} ms without renewal`), ttl);
    timer.unref();
    this.granted.set(name, { lockID, holder, timer, goneSince: old?.lockID === lockID ? old.goneSince : null });
    this.watchHolders();
    return Date.now() + ttl;
  }

  /** Releases the locks whose replica stopped streaming HOLDER_GONE_MS ago; runs while any lock is granted. */
  private watchHolders(): void {
    if (this.watch !== null || this.o.isStreaming === undefined) return;
    const isStreaming = this.o.isStreaming;
    const goneMs = this.o.holderGoneMs ?? HOLDER_GONE_MS;
    this.watch = setInterval(() => {
      const now = Date.now();
      for (const [name, g] of this.granted) {
        if (g.holder === 0n || isStreaming(g.holder)) g.goneSince = null;
        else if (g.goneSince === null) g.goneSince = now;
        else if (now - g.goneSince >= goneMs) this.expire(name, g.lockID, `its replica has not streamed from this node for ${goneMs} ms`);
      }
      if (this.granted.size === 0 && this.watch !== null) {
        clearInterval(this.watch);
        this.watch = null;
      }
    }, this.o.holderCheckMs ?? HOLDER_CHECK_MS);
    this.watch.unref();
  }

  private expire(name: string, lockID: bigint, why: string): void {
    this.o.log(`${name}: HALT lock ${lockID} released: ${why}`);
    this.release(name, lockID).catch((err: unknown) => this.o.log(`${name}: releasing an expired HALT lock: ${err instanceof Error ? err.message : String(err)}`));
  }

  private forget(name: string, g: Granted): void {
    clearTimeout(g.timer);
    this.granted.delete(name);
    if (this.granted.size === 0 && this.watch !== null) {
      clearInterval(this.watch);
      this.watch = null;
    }
  }

  private checkPrimary(): void {
    if (!this.o.isPrimary()) throw new Error('node is not the primary');
  }
}
