/**
 * Test parts for the replica client: an in-memory database history that
 * makes real LTX files (LTXEncoder), a primary behind the real ApiServer
 * serving those histories, a bare HTTP/2 server that writes scripted bytes
 * (for what a correct primary never sends), and a fake applier that keeps
 * positions as the FUSE thread would.
 */
import { createServer, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import {
  type ApiNode,
  type ChangeNotice,
  type ChangeSubscription,
  type EventSubscription,
  type LTXFileStream,
  type NodeInfo,
  type ReplicationSource,
} from '../../../src/http/api.js';
import type { Pos } from '../../../src/http/posmap.js';
import { ApiServer } from '../../../src/http/server.js';
import { RECEIVED_SUFFIX } from '../../../src/store/db.js';
import { DatabaseChecksum, LTXEncoder, decodeBytes, isSnapshot, makeHeader } from '../../../src/ltx/index.js';
import { ReplicaClient, type LTXApplier, type ReplicaClientOptions } from '../../../src/node/replica-client.js';
import type { QuarantineRequest } from '../../../src/store/messages.js';

export const PRIMARY_ID = 0x1122334455667788n;
export const REPLICA_ID = 0x0123456789abcdefn;
export const CLUSTER = 'LFSC00112233445566AA';
const PAGE_SIZE = 512;

/** One database's history: pages, and the LTX file of every transaction. */
export class History {
  readonly pages = new Map<number, Buffer>();
  /** files[txid] = LTX file of that transaction (txid 1 is a snapshot by definition). */
  readonly files: Buffer[] = [];
  readonly positions: Pos[] = [{ txid: 0n, postApplyChecksum: 0n }];

  get txid(): number {
    return this.positions.length - 1;
  }

  pos(txid = this.txid): Pos {
    return this.positions[txid]!;
  }

  /** Commits one transaction writing `text` into each given page. */
  commit(changes: Record<number, string>): this {
    for (const [pgno, text] of Object.entries(changes)) {
      const page = Buffer.alloc(PAGE_SIZE);
      page.write(text);
      this.pages.set(Number(pgno), page);
    }
    const txid = BigInt(this.txid + 1);
    const changed = Object.keys(changes).map(Number);
    const file = this.encode(txid, txid, this.pos().postApplyChecksum, txid === 1n ? [...this.pages.keys()] : changed);
    this.files[Number(txid)] = file.bytes;
    this.positions.push(file.pos);
    return this;
  }

  /** A snapshot of the current state, as a primary streams it. */
  snapshot(nodeID = PRIMARY_ID): Buffer {
    return this.encode(1n, BigInt(this.txid), 0n, [...this.pages.keys()], nodeID).bytes;
  }

  private encode(minTXID: bigint, maxTXID: bigint, pre: bigint, pgnos: number[], nodeID = PRIMARY_ID): { bytes: Buffer; pos: Pos } {
    const parts: Buffer[] = [];
    const enc = new LTXEncoder({ write: (c) => parts.push(Buffer.from(c)) });
    const commit = Math.max(...this.pages.keys());
    enc.encodeHeader(makeHeader({ pageSize: PAGE_SIZE, commit, minTXID, maxTXID, preApplyChecksum: pre, timestamp: BigInt(Date.now()), nodeID }));
    for (const pgno of [...pgnos].sort((a, b) => a - b)) enc.encodePage(pgno, this.pages.get(pgno)!);
    const sum = new DatabaseChecksum(PAGE_SIZE);
    for (const [pgno, page] of this.pages) sum.addPage(pgno, page);
    enc.setPostApplyChecksum(sum.value);
    enc.close();
    return { bytes: Buffer.concat(parts), pos: { txid: maxTXID, postApplyChecksum: sum.value } };
  }
}

class Changes implements ChangeSubscription {
  private pending: Set<string> | undefined;
  private wake: (() => void) | undefined;
  closed = false;

  push(dirty: string[]): void {
    this.pending ??= new Set();
    for (const d of dirty) this.pending.add(d);
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
    const dirty = this.pending;
    this.pending = undefined;
    return { dirty };
  }

  close(): void {
    this.closed = true;
  }
}

/** How the primary should misbehave when it next sends a file: 'truncate' the body, 'corrupt' a byte. */
export type Fault = 'truncate' | 'corrupt';

/** A primary's node and replication source over in-memory histories. */
export class HistoryPrimary implements ApiNode, ReplicationSource {
  readonly nodeID = PRIMARY_ID;
  readonly replication: ReplicationSource = this;
  readonly dbs = new Map<string, History>();
  readonly subs: Changes[] = [];
  /** `name@txid` of every file opened, and `name@snapshot` for every snapshot sent. */
  readonly sent: string[] = [];
  /** Faults to inject, by `name@txid`, each used once. */
  readonly faults = new Map<string, Fault>();

  constructor(private readonly cluster = CLUSTER) {}

  clusterID(): string {
    return this.cluster;
  }
  info(): NodeInfo {
    return { clusterID: this.cluster, isPrimary: true, candidate: true, path: '/p', primaryHostname: 'primary' };
  }
  exportDatabase(): undefined {
    return undefined;
  }
  async importDatabase(): Promise<void> {
    throw new Error('not in this fake');
  }
  async acquireHaltLock(): Promise<never> {
    throw new Error('not in this fake');
  }
  async releaseHaltLock(): Promise<void> {}
  async applyForwardedTx(): Promise<void> {
    throw new Error('not in this fake');
  }
  async handoff(): Promise<void> {
    throw new Error('not in this fake');
  }
  async promote(): Promise<void> {}
  subscribeEvents(): EventSubscription {
    return { next: async () => undefined, close: () => {} };
  }

  primarySignal(): AbortSignal {
    return new AbortController().signal;
  }
  subscribeChanges(): ChangeSubscription {
    const sub = new Changes();
    this.subs.push(sub);
    return sub;
  }
  databaseNames(): string[] {
    return [...this.dbs.keys()];
  }
  position(name: string): Pos | undefined {
    return this.dbs.get(name)?.pos();
  }
  hwm(name: string): bigint {
    return BigInt(this.dbs.get(name)?.txid ?? 0) * 100n;
  }

  async openLTXFile(name: string, txid: bigint): Promise<LTXFileStream | undefined> {
    const h = this.dbs.get(name);
    const file = h?.files[Number(txid)];
    if (!h || !file) return undefined;
    this.sent.push(`${name}@${txid}`);
    const key = `${name}@${txid}`;
    const fault = this.faults.get(key);
    this.faults.delete(key);
    return {
      preApplyChecksum: h.pos(Number(txid) - 1).postApplyChecksum,
      pos: h.pos(Number(txid)),
      body: (async function* () {
        if (fault === 'truncate') {
          yield file.subarray(0, file.length >> 1);
          throw new Error('injected: disk read failed mid-file');
        }
        if (fault === 'corrupt') {
          const bad = Buffer.from(file);
          bad[150] = bad[150]! ^ 0xff; // inside the first page
          yield bad;
          return;
        }
        yield file;
      })(),
      close: async () => {},
    };
  }

  async writeSnapshot(name: string, write: (bytes: Uint8Array) => Promise<void>): Promise<Pos> {
    const h = this.dbs.get(name)!;
    this.sent.push(`${name}@snapshot`);
    const snap = h.snapshot();
    await write(snap.subarray(0, 100));
    await write(snap.subarray(100));
    return h.pos();
  }

  /** Commits to `name` and wakes every open stream. */
  commit(name: string, changes: Record<number, string>): void {
    let h = this.dbs.get(name);
    if (!h) this.dbs.set(name, (h = new History()));
    h.commit(changes);
    for (const s of this.subs) if (!s.closed) s.push([name]);
  }
}

/** The real ApiServer in front of a HistoryPrimary. */
export async function startPrimary(node: HistoryPrimary, port = 0): Promise<{ server: ApiServer; url: string; port: number }> {
  const server = new ApiServer({ node, registry: new Registry() });
  const addr = await server.listen(port, '127.0.0.1');
  return { server, url: `http://127.0.0.1:${addr.port}`, port: addr.port };
}

export interface ScriptedRequest {
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** What a scripted primary answers to its n-th /stream request: response headers and bytes; `hold` keeps it open. */
export interface ScriptedAnswer {
  readonly headers?: Record<string, string>;
  readonly bytes: Buffer[];
  readonly hold?: boolean;
}

/** A bare h2c server that answers each POST /stream with scripted bytes. */
export async function scriptedPrimary(
  script: (attempt: number) => ScriptedAnswer,
): Promise<{ server: Http2Server; url: string; requests: ScriptedRequest[]; close(): Promise<void> }> {
  const requests: ScriptedRequest[] = [];
  const open = new Set<ServerHttp2Stream>();
  const server = createServer();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const parts: Buffer[] = [];
    stream.on('data', (d: Buffer) => parts.push(d));
    stream.on('end', () => {
      const attempt = requests.length;
      requests.push({ headers, body: Buffer.concat(parts) });
      const answer = script(attempt);
      stream.respond({ ':status': 200, 'litefs-id': '1122334455667788', 'litefs-cluster-id': CLUSTER, ...answer.headers });
      for (const b of answer.bytes) stream.write(b);
      if (answer.hold) {
        open.add(stream);
        stream.on('close', () => open.delete(stream));
      } else stream.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: async () => {
      for (const s of open) s.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface ApplyCall {
  readonly db: string;
  readonly minTXID: bigint;
  readonly maxTXID: bigint;
  readonly snapshot: boolean;
  readonly quarantine: QuarantineRequest | null;
}

/** Applies as the FUSE thread would (positions must continue), without a database: keeps positions only. */
export class FakeApplier implements LTXApplier {
  readonly positions = new Map<string, Pos>();
  readonly calls: ApplyCall[] = [];
  /** Rejections still to make, as a FUSE thread reporting a failed apply. */
  rejectNext = 0;
  /** Refuse the file ending at this TXID (once). */
  rejectTXID: bigint | undefined;
  /** While set, every apply waits for it (a slow FUSE thread). */
  hold: Promise<void> | undefined;
  /** Applies running now, and the most ever at once (must stay 1). */
  active = 0;
  maxActive = 0;

  /** Makes applies wait until the returned function is called. */
  pause(): () => void {
    let release!: () => void;
    this.hold = new Promise((r) => (release = r));
    return () => {
      this.hold = undefined;
      release();
    };
  }

  /** Files per apply call, in call order. */
  readonly batches: number[] = [];

  async apply(db: string, paths: readonly string[], quarantine: QuarantineRequest | null): Promise<void> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    this.batches.push(paths.length);
    try {
      for (const path of paths) await this.applyOne(db, path, quarantine);
    } finally {
      this.active--;
    }
  }

  private async applyOne(db: string, path: string, quarantine: QuarantineRequest | null): Promise<void> {
    // Whatever reaches us must be a whole, valid file.
    const { header, trailer } = decodeBytes(await readFile(path));
    while (this.hold) await this.hold;
    if (this.rejectTXID === header.maxTXID) {
      this.rejectTXID = undefined;
      throw new Error(`${db}: injected apply failure of TXID ${header.maxTXID}`);
    }
    if (this.rejectNext > 0) {
      this.rejectNext--;
      throw new Error(`${db}: injected apply failure`);
    }
    const local = this.positions.get(db) ?? { txid: 0n, postApplyChecksum: 0n };
    if (!isSnapshot(header) && (local.txid !== header.minTXID - 1n || local.postApplyChecksum !== header.preApplyChecksum)) {
      throw new Error(`${db}: position mismatch`);
    }
    await rm(path); // the FUSE thread moves it into ltx/ before the position changes
    this.calls.push({ db, minTXID: header.minTXID, maxTXID: header.maxTXID, snapshot: isSnapshot(header), quarantine });
    this.positions.set(db, { txid: header.maxTXID, postApplyChecksum: trailer.postApplyChecksum });
  }
}

export interface Replica {
  readonly client: ReplicaClient;
  readonly applier: FakeApplier;
  readonly dataDir: string;
  readonly logs: string[];
  readonly events: string[];
  readonly adopted: string[];
  readonly timestamps: number[];
  clusterID: string;
  /** Stops run() and removes the data dir. */
  stop(): Promise<void>;
  /**
   * Received files not applied (or removed) yet: in `<data>/tmp` except the
   * receiver's one empty spare, and those placed in a database's `ltx/` as
   * `<name>.received` (store/db.ts RECEIVED_SUFFIX).
   */
  tmpFiles(): string[];
}

/** A ReplicaClient with a FakeApplier, running until stop(). */
export function startReplica(url: string, extra: Partial<Omit<ReplicaClientOptions, 'clusterID'>> & { localClusterID?: string; local?: Map<string, Pos> } = {}): Replica {
  const { local, localClusterID, ...options } = extra;
  const dataDir = mkdtempSync(join(tmpdir(), 'replica-client-'));
  const applier = new FakeApplier();
  for (const [k, v] of local ?? []) applier.positions.set(k, v);
  const ac = new AbortController();
  const r: Replica = {
    applier,
    dataDir,
    logs: [],
    events: [],
    adopted: [],
    timestamps: [],
    clusterID: localClusterID ?? CLUSTER,
    client: undefined as unknown as ReplicaClient,
    stop: async () => {
      ac.abort();
      await running;
      rmSync(dataDir, { recursive: true, force: true });
    },
    tmpFiles: () => {
      const list = (dir: string): string[] => {
        try {
          return readdirSync(dir);
        } catch {
          return [];
        }
      };
      const names = list(join(dataDir, 'tmp'));
      // One empty file is the receiver's spare (created ahead for the next file); more would be a leak.
      const empty = names.filter((n) => statSync(join(dataDir, 'tmp', n), { throwIfNoEntry: false })?.size === 0);
      const inTmp = empty.length <= 1 ? names.filter((n) => !empty.includes(n)) : names;
      const placed = list(join(dataDir, 'dbs')).flatMap((db) => list(join(dataDir, 'dbs', db, 'ltx')).filter((n) => n.endsWith(RECEIVED_SUFFIX)));
      return [...inTmp, ...placed];
    },
  };
  const client = new ReplicaClient({
    primaryURL: url,
    nodeID: REPLICA_ID,
    dataDir,
    reconnectDelayMs: 20,
    positions: () => applier.positions,
    clusterID: () => r.clusterID,
    adoptClusterID: (id) => {
      r.adopted.push(id);
      r.clusterID = id;
    },
    applier,
    onReady: () => r.events.push('ready'),
    onPrimaryTimestamp: (ms) => r.timestamps.push(ms),
    onHWM: (db, txid) => r.events.push(`hwm ${db} ${txid}`),
    onConnected: () => r.events.push('connected'),
    onDisconnected: (reason) => r.events.push(`disconnected: ${reason}`),
    log: (line) => r.logs.push(line),
    ...options,
  });
  (r as { client: ReplicaClient }).client = client;
  const running = client.run(ac.signal);
  return r;
}

/** Waits until `cond` holds (generous deadline; no timing assertions). */
export async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
