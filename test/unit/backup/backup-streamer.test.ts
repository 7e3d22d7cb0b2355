/**
 * BackupStreamer uploading into a real FileBackupClient in a temp folder.
 *
 * The `source` is a stand-in: the real DataDirReplicationSource reads the live
 * data directory of a mounted node (database image and ltx/ files kept
 * consistent by the FUSE layer), which the FUSE suite exercises end to end.
 * Here each database's history lives in memory (the image after every TXID
 * and its LTX file, written by the project's encoder), so a case can remove a
 * file or start another history directly. Every upload is checked through
 * the backup itself: its file names, its positions and restoreDatabase.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import {
  type ByteSink,
  HeaderFlagCompressLZ4,
  LTXEncoder,
  type Pos,
  formatFilename,
  verifyFileSync,
} from '../../../src/ltx/index.js';
import type { BackupClient } from '../../../src/backup/client.js';
import { FileBackupClient } from '../../../src/backup/file.js';
import { restoreDatabase } from '../../../src/backup/restore.js';
import type { LTXFileStream } from '../../../src/http/api.js';
import { BackupStreamer } from '../../../src/node/backup-streamer.js';
import { History } from './history.js';
import type { DataDirReplicationSource } from '../../../src/node/replication-source.js';

const PAGE = 4096;

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix = 'backup-streamer-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Keeps what the encoder hands over until `take`. */
class PendingSink implements ByteSink {
  private chunks: Uint8Array[] = [];

  write(chunk: Uint8Array): void {
    this.chunks.push(chunk.slice());
  }

  take(): Uint8Array[] {
    const out = this.chunks;
    this.chunks = [];
    return out;
  }
}

type Source = Pick<DataDirReplicationSource, 'databaseNames' | 'position' | 'openLTXFile' | 'writeSnapshot'>;

/** The stand-in source (see the top of the file): per database a History and its one-TXID LTX files. */
class MemorySource implements Source {
  readonly dbs = new Map<string, { history: History; files: Map<bigint, Buffer> }>();
  snapshots = 0;
  /** Bytes the snapshots handed to `write`. */
  snapshotBytes = 0;
  opened = 0;
  closed = 0;
  /** Set: writeSnapshot throws after writing this many pages. */
  failAfterPages: number | undefined;

  add(db: string, history = new History(PAGE)): History {
    this.dbs.set(db, { history, files: new Map() });
    return history;
  }

  /** Commits a transaction of `db` and keeps its LTX file, as the store would. */
  commit(db: string, pgnos: number[], commit?: number): bigint {
    const d = this.get(db);
    const txid = d.history.commit(pgnos, commit);
    d.files.set(txid, d.history.file(txid, txid, true));
    return txid;
  }

  /** Retention removed the file of `txid`. */
  drop(db: string, txid: bigint): void {
    this.get(db).files.delete(txid);
  }

  databaseNames(): string[] {
    return [...this.dbs.keys()].sort();
  }

  position(name: string): Pos | undefined {
    const d = this.dbs.get(name);
    return d === undefined ? undefined : d.history.pos(d.history.txid);
  }

  async openLTXFile(name: string, txid: bigint): Promise<LTXFileStream | undefined> {
    const bytes = this.dbs.get(name)?.files.get(txid);
    if (bytes === undefined) return undefined;
    this.opened++;
    const h = this.get(name).history;
    return {
      preApplyChecksum: txid === 1n ? 0n : h.checksum(txid - 1n),
      pos: h.pos(txid),
      body: (async function* () {
        for (let off = 0; off < bytes.length; off += 1000) yield bytes.subarray(off, off + 1000);
      })(),
      close: async () => {
        this.closed++;
      },
    };
  }

  /** Encodes a snapshot of the current image through `write`, one awaited write per page (and header, trailer). */
  async writeSnapshot(name: string, write: (bytes: Uint8Array) => Promise<void>, signal: AbortSignal): Promise<Pos> {
    const { history } = this.get(name);
    this.snapshots++;
    const txid = history.txid;
    const img = history.image(txid);
    const pages = img.length / PAGE;
    const sink = new PendingSink();
    const flush = async (): Promise<void> => {
      for (const chunk of sink.take()) {
        this.snapshotBytes += chunk.length;
        await write(chunk);
      }
    };
    const enc = new LTXEncoder(sink);
    enc.encodeHeader(history.header(1n, txid, pages, false));
    for (let p = 1; p <= pages; p++) {
      if (signal.aborted) throw new Error('snapshot cancelled');
      if (this.failAfterPages !== undefined && p > this.failAfterPages) throw new Error('snapshot read failed');
      enc.encodePage(p, img.subarray((p - 1) * PAGE, p * PAGE));
      await flush();
    }
    enc.setPostApplyChecksum(history.checksum(txid));
    enc.close();
    await flush();
    return history.pos(txid);
  }

  private get(db: string): { history: History; files: Map<bigint, Buffer> } {
    const d = this.dbs.get(db);
    assert.ok(d !== undefined, `no database ${db}`);
    return d;
  }
}

/** Passes writes on to a FileBackupClient, counting them and letting a test wait until none is running. */
class CountingClient implements BackupClient {
  writes = 0;
  private readonly running = new Set<Promise<unknown>>();

  constructor(readonly inner: FileBackupClient) {}

  get url(): string {
    return this.inner.url;
  }

  posMap(): Promise<Map<string, Pos>> {
    return this.inner.posMap();
  }

  writeTx(name: string, body: AsyncIterable<Uint8Array>): Promise<bigint> {
    this.writes++;
    const p = this.inner.writeTx(name, body);
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    this.running.add(settled);
    void settled.then(() => this.running.delete(settled));
    return p;
  }

  /** Resolves once every write started so far has ended (syncAll may return before a failed upload has cleaned up). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
  }
}

interface Setup {
  root: string;
  client: CountingClient;
  source: MemorySource;
  logs: string[];
  streamer: BackupStreamer;
  primary: { value: boolean };
  signal: AbortSignal;
}

function setup(opts: { primary?: boolean; snapshotIntervalMs?: number; now?: () => number } = {}): Setup {
  const root = join(tempDir(), 'backup');
  const client = new CountingClient(new FileBackupClient(root));
  const source = new MemorySource();
  const logs: string[] = [];
  const primary = { value: opts.primary ?? true };
  const streamer = new BackupStreamer({
    client,
    source,
    isPrimary: () => primary.value,
    // run(): wakes soon, as if something changed (short timers only, so nothing outlives a test).
    changed: (ms) => new Promise((resolve) => setTimeout(resolve, Math.min(ms, 2))),
    compress: true,
    log: (line) => logs.push(line),
    delayMs: 1,
    snapshotIntervalMs: opts.snapshotIntervalMs ?? 0,
    ...(opts.now === undefined ? {} : { now: opts.now }),
  });
  return { root, client, source, logs, streamer, primary, signal: new AbortController().signal };
}

function ls(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

function name(min: bigint, max: bigint): string {
  return formatFilename(min, max);
}

/** Restores `db` at `txid` from the backup and returns the image. */
function restored(root: string, db: string, txid: bigint): Buffer {
  const out = join(tempDir('backup-streamer-out-'), 'db');
  const r = restoreDatabase(root, db, { txid }, out);
  assert.equal(r.txid, txid);
  return readFileSync(out);
}

/** Three transactions: pages 1-3, page 2, then growth to 4 pages. */
function firstThree(source: MemorySource, db: string): History {
  const h = source.add(db);
  source.commit(db, [1, 2, 3], 3);
  source.commit(db, [2]);
  source.commit(db, [1, 4], 4);
  return h;
}

describe('BackupStreamer', () => {
  test('the first pass on an empty backup uploads a snapshot', async () => {
    const { root, client, source, streamer, signal, logs } = setup();
    const h = firstThree(source, 'db');
    await streamer.syncAll(signal);
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 3n)]);
    assert.equal(source.snapshots, 1);
    assert.equal(source.opened, 0);
    assert.deepEqual(await client.posMap(), new Map([['db', h.pos(3n)]]));
    assert.ok(restored(root, 'db', 3n).equals(h.image(3n)));
    assert.deepEqual(logs, []);
    // Nothing new: a second pass writes nothing.
    await streamer.syncAll(signal);
    assert.equal(client.writes, 1);
  });

  test('later passes upload the new files compacted into one file', async () => {
    const { root, client, source, streamer, signal } = setup();
    const h = firstThree(source, 'db');
    const other = firstThree(source, 'other');
    await streamer.syncAll(signal);
    source.commit('db', [3]);
    source.commit('db', [1], 2);
    source.commit('db', [1, 3, 4, 5], 5);
    source.commit('other', [4]);
    await streamer.syncAll(signal);
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 3n), name(4n, 6n)]);
    assert.deepEqual(ls(join(root, 'other')), [name(1n, 3n), name(4n, 4n)]);
    assert.equal(source.snapshots, 2);
    assert.equal(source.opened, 4);
    assert.equal(source.closed, source.opened);
    const { header } = verifyFileSync(join(root, 'db', name(4n, 6n)));
    assert.equal(header.flags & HeaderFlagCompressLZ4, HeaderFlagCompressLZ4);
    assert.equal(header.preApplyChecksum, h.checksum(3n));
    assert.deepEqual(await client.posMap(), new Map([['db', h.pos(6n)], ['other', other.pos(4n)]]));
    assert.ok(restored(root, 'db', 6n).equals(h.image(6n)));
    assert.ok(restored(root, 'other', 4n).equals(other.image(4n)));
    // One more commit: one more file.
    source.commit('db', [2, 5]);
    await streamer.syncAll(signal);
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 3n), name(4n, 6n), name(7n, 7n)]);
    assert.ok(restored(root, 'db', 7n).equals(h.image(7n)));
    assert.equal(source.snapshots, 2);
  });

  test('more new files than one upload takes (256): the pass says so, and the next goes on from there', async () => {
    const { root, source, streamer, signal } = setup();
    const h = firstThree(source, 'db');
    await streamer.syncAll(signal);
    for (let i = 0; i < 300; i++) source.commit('db', [1 + (i % 4)]);
    assert.equal(await streamer.syncAll(signal), true, 'more remain after 256');
    assert.equal(await streamer.syncAll(signal), false, 'caught up');
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 3n), name(4n, 259n), name(260n, 303n)]);
    assert.ok(restored(root, 'db', 303n).equals(h.image(303n)));
  });

  test('with a snapshot interval, a fresh snapshot replaces the new files once it has passed, bounding what a restore replays', async () => {
    let clock = 1_000_000;
    const { root, source, streamer, signal } = setup({ snapshotIntervalMs: 60_000, now: () => clock });
    const h = firstThree(source, 'db');
    await streamer.syncAll(signal);
    source.commit('db', [2]);
    await streamer.syncAll(signal);
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 3n), name(4n, 4n)], 'within the interval: incremental');
    clock += 60_000;
    source.commit('db', [3]);
    await streamer.syncAll(signal);
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 3n), name(1n, 5n), name(4n, 4n)], 'past it: a snapshot');
    assert.ok(restored(root, 'db', 5n).equals(h.image(5n)));
    assert.ok(restored(root, 'db', 4n).equals(h.image(4n)));
  });

  test('a missing local file in the range makes it send a snapshot instead', async () => {
    const { root, source, streamer, signal, logs } = setup();
    const h = firstThree(source, 'db');
    await streamer.syncAll(signal);
    source.commit('db', [3]);
    source.commit('db', [2]);
    source.commit('db', [1, 5], 5);
    source.drop('db', 5n);
    await streamer.syncAll(signal);
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 3n), name(1n, 6n)]);
    assert.equal(source.snapshots, 2);
    assert.equal(source.closed, source.opened);
    assert.ok(restored(root, 'db', 6n).equals(h.image(6n)));
    assert.ok(restored(root, 'db', 3n).equals(h.image(3n)));
    assert.deepEqual(logs, []);
  });

  test('a backup whose position is not in the local history is re-based with a snapshot, and logged', async () => {
    const { root, client, source, streamer, signal, logs } = setup();
    // The backup holds another history up to TXID 3.
    const other = new History(PAGE, 7000);
    other.commit([1, 2], 2);
    other.commit([2]);
    other.commit([1]);
    await client.inner.writeTx('db', (async function* () {
      yield other.file(1n, 3n);
    })());
    const h = firstThree(source, 'db');
    source.commit('db', [4]);
    source.commit('db', [1, 3]);
    await streamer.syncAll(signal);
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 3n), name(1n, 5n)]);
    assert.equal(logs.filter((l) => /not in this node's history; re-basing it with a snapshot/.test(l)).length, 1, logs.join('\n'));
    assert.deepEqual(await client.posMap(), new Map([['db', h.pos(5n)]]));
    // Both histories stay restorable.
    assert.ok(restored(root, 'db', 3n).equals(other.image(3n)));
    assert.ok(restored(root, 'db', 5n).equals(h.image(5n)));
  });

  test(
    'after a re-base over a backup chain with incremental files, the next commit goes up as an incremental file',
    async () => {
      const { root, client, source, streamer, signal } = setup();
      const other = new History(PAGE, 7000);
      other.commit([1, 2], 2);
      other.commit([2]);
      other.commit([1]);
      await client.inner.writeTx('db', (async function* () {
        yield other.file(1n, 2n);
      })());
      await client.inner.writeTx('db', (async function* () {
        yield other.file(3n, 3n);
      })());
      const h = firstThree(source, 'db');
      source.commit('db', [4]);
      source.commit('db', [1, 3]);
      await streamer.syncAll(signal);
      assert.deepEqual(ls(join(root, 'db')), [name(1n, 2n), name(1n, 5n), name(3n, 3n)]);
      source.commit('db', [2]);
      await streamer.syncAll(signal);
      assert.deepEqual(ls(join(root, 'db')), [name(1n, 2n), name(1n, 5n), name(3n, 3n), name(6n, 6n)]);
      assert.deepEqual(await client.posMap(), new Map([['db', h.pos(6n)]]));
    },
  );

  test('a backup ahead of this node is left alone, logged once, and re-based once this node is ahead', async () => {
    const { root, client, source, streamer, signal, logs } = setup();
    const other = new History(PAGE, 9000);
    other.commit([1, 2], 2);
    for (let i = 2; i <= 9; i++) other.commit([i % 2 === 0 ? 1 : 2]);
    await client.inner.writeTx('db', (async function* () {
      yield other.file(1n, 9n);
    })());
    const h = firstThree(source, 'db');
    source.commit('db', [4]);
    for (let i = 0; i < 3; i++) await streamer.syncAll(signal);
    assert.equal(client.writes, 0);
    assert.equal(source.snapshots, 0);
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 9n)]);
    const ahead = logs.filter((l) => /the backup is ahead of this node/.test(l));
    assert.equal(ahead.length, 1, logs.join('\n'));
    assert.match(ahead[0], /backup 0000000000000009\/[0-9a-f]{16}, local 0000000000000004\//);
    // Once this node is ahead (its TXID 10 does not continue the backup's 9), a snapshot re-bases the backup.
    for (let t = 5; t <= 10; t++) source.commit('db', [t % 4 + 1]);
    await streamer.syncAll(signal);
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 9n), name(1n, 10n)]);
    assert.equal(source.snapshots, 1);
    assert.ok(restored(root, 'db', 10n).equals(h.image(10n)));
    assert.ok(restored(root, 'db', 9n).equals(other.image(9n)));
  });

  test('a replica uploads nothing: syncAll and run() stay idle', async () => {
    const { root, client, source, streamer, signal } = setup({ primary: false });
    firstThree(source, 'db');
    await streamer.syncAll(signal);
    assert.deepEqual(ls(root), []);
    const ctl = new AbortController();
    let finished = false;
    const running = streamer.run(ctl.signal).then(() => {
      finished = true;
    });
    // Let it go round its loop for a while.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    assert.equal(finished, false);
    ctl.abort();
    await running;
    assert.equal(finished, true);
    assert.deepEqual(ls(root), []);
    assert.equal(client.writes, 0);
    assert.equal(source.snapshots, 0);
    assert.equal(source.opened, 0);
  });

  test('a failing snapshot writer leaves no file and syncAll rejects; a later pass succeeds', async () => {
    const { root, client, source, streamer, signal } = setup();
    // 40 pages of 4 KiB: the encoder hands over 64 KiB at a time, so the writer fails after real writes.
    const h = source.add('db');
    source.commit('db', Array.from({ length: 40 }, (_, i) => i + 1), 40);
    source.commit('db', [7, 30]);
    source.failAfterPages = 35;
    await assert.rejects(streamer.syncAll(signal), /snapshot read failed/);
    assert.ok(source.snapshotBytes >= 64 * 1024, `${source.snapshotBytes} bytes written before the failure`);
    await client.idle();
    assert.deepEqual(ls(join(root, 'db')), []);
    assert.deepEqual(await client.posMap(), new Map());
    // Failing before anything is written, too.
    source.failAfterPages = 0;
    source.snapshotBytes = 0;
    await assert.rejects(streamer.syncAll(signal), /snapshot read failed/);
    assert.equal(source.snapshotBytes, 0);
    await client.idle();
    assert.deepEqual(ls(join(root, 'db')), []);
    source.failAfterPages = undefined;
    await streamer.syncAll(signal);
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 2n)]);
    assert.deepEqual(await client.posMap(), new Map([['db', h.pos(2n)]]));
    assert.ok(restored(root, 'db', 2n).equals(h.image(2n)));
  });

  test('run() uploads as a primary and stops when aborted', async () => {
    const { root, source, streamer } = setup();
    const h = firstThree(source, 'db');
    const ctl = new AbortController();
    const running = streamer.run(ctl.signal);
    while (ls(join(root, 'db')).length === 0) await tick();
    ctl.abort();
    await running;
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 3n)]);
    assert.ok(restored(root, 'db', 3n).equals(h.image(3n)));
  });
});

describe('BackupStreamer shutdown', () => {
  test('run() ends at once when aborted during a pass, not after its 10 s wait', { timeout: 5_000 }, async () => {
    let release: () => void = () => {};
    let entered: () => void = () => {};
    const inPass = new Promise<void>((resolve) => (entered = resolve));
    const client: BackupClient = {
      url: 'test://gated',
      posMap: async () => {
        entered();
        await new Promise<void>((resolve) => (release = resolve));
        return new Map();
      },
      writeTx: () => Promise.reject(new Error('no uploads expected')),
    };
    const streamer = new BackupStreamer({
      client,
      source: { databaseNames: () => [], position: () => undefined, openLTXFile: async () => undefined, writeSnapshot: () => Promise.reject(new Error('unused')) },
      isPrimary: () => true,
      changed: () => new Promise(() => {}),
      compress: false,
      log: () => {},
      fullSyncMs: 60_000,
      delayMs: 60_000,
    });
    const aborter = new AbortController();
    const running = streamer.run(aborter.signal);
    await inPass;
    aborter.abort();
    release();
    await running;
  });
});
