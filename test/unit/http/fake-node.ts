/**
 * An in-test fake of the store/node behind the API server (the real store
 * does not exist yet). It reproduces the recorded Go node's state from
 * test/fixtures/wire/: a.db and b.db at the positions of the README's SQL
 * table, the on-disk LTX files, the export images, and the snapshot bodies
 * the Go node streamed (patched with this node's id and the current time, as
 * a real snapshot would be; the file checksum is left stale because every
 * capture masks it).
 */
import type { HaltLock } from '../../../src/http/halt-lock.js';
import {
  ApiError,
  DatabaseNotFoundError,
  NotPrimaryError,
  type ApiNode,
  type ChangeNotice,
  type ChangeSubscription,
  type EventSubscription,
  type LTXFileStream,
  type NodeInfo,
  type ReplicationSource,
} from '../../../src/http/api.js';
import type { LiteFSEvent } from '../../../src/http/events.js';
import { decodeFrames } from '../../../src/http/frames.js';
import type { Pos } from '../../../src/http/posmap.js';
import { recordedLTX, wireFile } from './wire-fixtures.js';

/** Positions of the recorded node (README "The SQL that produced the data"). */
export const RECORDED_POS: Record<string, Record<number, bigint>> = {
  'a.db': { 1: 0xb898a5bfe3f88b6cn, 2: 0xdda7a2c3a9890af9n, 3: 0xa444cfc485df4b1dn, 4: 0x97aab38f46fe2e67n },
  'b.db': { 1: 0xce1969f21a78f3f9n, 2: 0xdac1e3d0df950021n, 3: 0xd37a7dd1148a75bcn },
};

/** Recorded snapshot payloads as [the writes the Go encoder made], by db and TXID. */
function recordedSnapshots(): Map<string, Buffer[]> {
  const out = new Map<string, Buffer[]>();
  const take = (file: string, index: number, key: string): void => {
    const f = decodeFrames(wireFile(file))[index]!;
    if (f.type !== 'ltx') throw new Error(`${file} frame ${index} is not LTX`);
    const writes: Buffer[] = [];
    let off = 0;
    for (const n of f.chunks) writes.push(f.payload.subarray(off, (off += n)));
    out.set(key, writes);
  };
  take('stream-empty-posmap.body.bin', 0, 'a.db@3');
  take('stream-empty-posmap.body.bin', 1, 'b.db@3');
  take('stream-a-ahead.body.bin', 0, 'a.db@4');
  return out;
}

class FakeChanges implements ChangeSubscription {
  private pending: { dirty: Set<string>; handoffLeaseID?: string } | undefined;
  private wake: (() => void) | undefined;
  closed = false;

  constructor(readonly replicaID: bigint) {}

  push(dirty: string[], handoffLeaseID?: string): void {
    this.pending ??= { dirty: new Set() };
    for (const d of dirty) this.pending.dirty.add(d);
    if (handoffLeaseID !== undefined) this.pending.handoffLeaseID = handoffLeaseID;
    this.wake?.();
  }

  async next(signal: AbortSignal): Promise<ChangeNotice | undefined> {
    while (!this.pending) {
      if (signal.aborted) return undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
      this.wake = undefined;
    }
    const notice = this.pending;
    this.pending = undefined;
    return notice;
  }

  close(): void {
    this.closed = true;
  }
}

class FakeEvents implements EventSubscription {
  private queue: LiteFSEvent[] = [];
  private wake: (() => void) | undefined;
  closed = false;

  push(ev: LiteFSEvent): void {
    this.queue.push(ev);
    this.wake?.();
  }

  async next(signal: AbortSignal): Promise<LiteFSEvent | undefined> {
    while (this.queue.length === 0) {
      if (signal.aborted || this.closed) return undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    return this.queue.shift();
  }

  close(): void {
    this.closed = true;
  }
}

export class FakeNode implements ApiNode, ReplicationSource {
  /** The fake itself, unless a real source (e.g. DataDirReplicationSource) is given. */
  readonly replication: ReplicationSource;
  /** Current TXID per database. */
  readonly txids = new Map<string, number>([
    ['a.db', 3],
    ['b.db', 3],
  ]);
  isPrimary = true;
  candidate = true;
  epochValue: bigint | undefined;
  readonly subscriptions: FakeChanges[] = [];
  readonly eventSubs: FakeEvents[] = [];
  readonly calls: string[] = [];
  private readonly snapshots = recordedSnapshots();
  private primary = new AbortController();

  constructor(
    readonly nodeID: bigint,
    private readonly cluster: string,
    private readonly path = '/var/lib/litefs-primary',
    replication?: ReplicationSource,
  ) {
    this.replication = replication ?? this;
  }

  // --- ApiNode ---
  clusterID(): string {
    return this.cluster;
  }

  epoch(): bigint | undefined {
    return this.epochValue;
  }

  info(): NodeInfo {
    return {
      clusterID: this.cluster,
      isPrimary: this.isPrimary,
      candidate: this.candidate,
      path: this.path,
      primaryHostname: this.isPrimary ? 'cap-primary' : '',
    };
  }

  exportDatabase(name: string): AsyncIterable<Uint8Array> | undefined {
    const txid = this.txids.get(name);
    if (txid === undefined) return undefined;
    const image = this.databaseImage(name, txid);
    return (async function* () {
      for (let off = 0; off < image.length; off += 4096) yield image.subarray(off, off + 4096);
    })();
  }

  async importDatabase(name: string, body: AsyncIterable<Uint8Array>): Promise<void> {
    if (!this.isPrimary) throw new NotPrimaryError();
    let size = 0;
    for await (const b of body) size += b.length;
    this.calls.push(`import ${name} ${size}`);
    if (size < 100) throw new Error('read database header: EOF');
  }

  async acquireHaltLock(name: string, lockID: bigint): Promise<HaltLock> {
    this.calls.push(`halt ${name} ${lockID}`);
    if (lockID === 0n) throw new Error('invalid lock id');
    const txid = this.txids.get(name) ?? 0;
    return { id: lockID, pos: { txid: BigInt(txid), postApplyChecksum: this.position(name)?.postApplyChecksum ?? 0n }, expires: Date.parse('2026-11-23T21:17:01.123Z') };
  }

  async releaseHaltLock(name: string, lockID: bigint): Promise<void> {
    if (!this.txids.has(name)) throw new DatabaseNotFoundError();
    this.calls.push(`unhalt ${name} ${lockID}`);
  }

  async applyForwardedTx(name: string, lockID: string, body: AsyncIterable<Uint8Array>): Promise<void> {
    if (!this.txids.has(name)) throw new DatabaseNotFoundError();
    let size = 0;
    for await (const b of body) size += b.length;
    this.calls.push(`tx ${name} ${lockID} ${size}`);
    if (size === 0) throw new Error('write ltx file: unexpected EOF');
  }

  async handoff(nodeID: bigint): Promise<void> {
    const sub = this.subscriptions.find((s) => s.replicaID === nodeID && !s.closed);
    if (!sub) throw new Error('target node is not currently connected');
    throw new Error('static lease does not support handoff');
  }

  async promote(): Promise<void> {
    if (!this.candidate) throw new ApiError(409, 'node is not a candidate');
    if (this.isPrimary) return;
    throw new Error('no primary is currently available for handoff, cannot promote');
  }

  subscribeEvents(): EventSubscription {
    const sub = new FakeEvents();
    sub.push({ type: 'init', data: { isPrimary: this.isPrimary } });
    this.eventSubs.push(sub);
    return sub;
  }

  // --- ReplicationSource ---
  primarySignal(): AbortSignal | undefined {
    return this.isPrimary ? this.primary.signal : undefined;
  }

  loseLease(): void {
    this.isPrimary = false;
    this.primary.abort();
    this.primary = new AbortController();
  }

  subscribeChanges(replicaID: bigint): ChangeSubscription {
    const sub = new FakeChanges(replicaID);
    this.subscriptions.push(sub);
    return sub;
  }

  databaseNames(): string[] {
    return [...this.txids.keys()];
  }

  position(name: string): Pos | undefined {
    const txid = this.txids.get(name);
    if (txid === undefined) return undefined;
    return { txid: BigInt(txid), postApplyChecksum: RECORDED_POS[name]![txid]! };
  }

  hwm(): bigint {
    return 0n;
  }

  async openLTXFile(name: string, txid: bigint): Promise<LTXFileStream | undefined> {
    const current = this.txids.get(name) ?? 0;
    if (txid > BigInt(current)) return undefined;
    let file: Buffer;
    try {
      file = recordedLTX(name, Number(txid));
    } catch {
      return undefined;
    }
    return {
      preApplyChecksum: file.readBigUInt64BE(40),
      pos: { txid: file.readBigUInt64BE(24), postApplyChecksum: file.readBigUInt64BE(file.length - 16) },
      body: (async function* () {
        yield file;
      })(),
      close: async () => {},
    };
  }

  async writeSnapshot(name: string, write: (bytes: Uint8Array) => Promise<void>): Promise<Pos> {
    const pos = this.position(name)!;
    const writes = this.snapshots.get(`${name}@${pos.txid}`);
    if (!writes) throw new Error(`fake has no recorded snapshot of ${name} at TXID ${pos.txid}`);
    const header = Buffer.from(writes[0]!);
    header.writeBigInt64BE(BigInt(Date.now()), 32);
    header.writeBigUInt64BE(this.nodeID, 72);
    await write(header);
    for (const w of writes.slice(1)) await write(w);
    return pos;
  }

  /** Pushes a change to every open /stream subscription. */
  notify(dirty: string[], handoffLeaseID?: string): void {
    for (const s of this.subscriptions) if (!s.closed) s.push(dirty, handoffLeaseID);
  }

  private databaseImage(name: string, txid: number): Buffer {
    if (txid === 3) return wireFile(`export-${name}.body.bin`);
    if (name === 'a.db' && txid === 4) return dechunk(wireFile('http1-export-a.db.resp.bin'));
    throw new Error(`fake has no image of ${name} at TXID ${txid}`);
  }
}

/** The body of a raw chunked HTTP/1.1 response. */
export function dechunk(raw: Buffer): Buffer {
  let off = raw.indexOf('\r\n\r\n') + 4;
  const parts: Buffer[] = [];
  for (;;) {
    const eol = raw.indexOf('\r\n', off);
    const n = parseInt(raw.toString('latin1', off, eol), 16);
    if (n === 0) break;
    parts.push(raw.subarray(eol + 2, eol + 2 + n));
    off = eol + 2 + n + 2;
  }
  return Buffer.concat(parts);
}
