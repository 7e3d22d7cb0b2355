import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { LTXEncoder, formatFilename, formatHex16, makeHeader } from '../../../src/ltx/index.js';
import { SHM_REGION_SIZE, buildShmHeader, parseShmHeader } from '../../../src/sqlite/index.js';
import { applyLTX, applyLTXFiles } from '../../../src/store/apply.js';
import { type DB, MAX_APPLY_GROUP, RECEIVED_SUFFIX } from '../../../src/store/db.js';
import { CrashIO, SimulatedCrash } from '../../../src/store/io-crash.js';
import { SyncfsState, syncGroup } from '../../../src/store/group-sync.js';
import { Store } from '../../../src/store/store.js';
import { ApplyPosMismatchError, InvalidWriteError } from '../../../src/store/errors.js';
import type { StoreEvent } from '../../../src/store/messages.js';
import { type Harness, PAGE, harness, imageChecksum, ltxNames, page, report, tx } from './store-fixture.js';

/**
 * A replica applying received LTX files (ref §6.6, ARCHITECTURE §3.1): real
 * files in a temporary data dir, LTX files made by a model primary.
 */

/** The primary's side: a database image and its LTX chain, files written into `<data>/tmp/`. */
class ModelPrimary {
  image = Buffer.alloc(0);
  txid = 0n;
  checksum = 0n;
  private n = 0;

  constructor(
    private readonly tmpDir: string,
    readonly pageSize = PAGE,
  ) {
    mkdirSync(tmpDir, { recursive: true });
  }

  /** The next transaction: `writes` pages (pgno → fill), database of `pages` pages; TXID 1 is a snapshot. */
  commit(pages: number, writes: number[], fill: number, wal = false): string {
    this.resize(pages);
    for (const pgno of writes) this.image.set(this.pageOf(fill, pgno, pages, wal), (pgno - 1) * this.pageSize);
    const min = this.txid + 1n;
    return this.write(min, min, this.checksum, writes, pages);
  }

  /** Deletes the database: commit 0, no pages. */
  drop(): string {
    this.image = Buffer.alloc(0);
    const min = this.txid + 1n;
    return this.write(min, min, this.checksum, [], 0);
  }

  /** A snapshot `1-<txid>` of the current image. */
  snapshot(): string {
    const pages = this.image.length / this.pageSize;
    return this.write(1n, this.txid, 0n, Array.from({ length: pages }, (_, i) => i + 1), pages, false);
  }

  private write(min: bigint, max: bigint, pre: bigint, writes: number[], commit: number, advance = true): string {
    const post = commit === 0 ? 1n << 63n : imageChecksum(this.image, this.pageSize);
    const chunks: Buffer[] = [];
    const enc = new LTXEncoder({ write: (c) => chunks.push(Buffer.from(c)) });
    enc.encodeHeader(makeHeader({ pageSize: this.pageSize, commit, minTXID: min, maxTXID: max, timestamp: 1_700_000_000_000n + max, preApplyChecksum: min === 1n ? 0n : pre, nodeID: 7n }));
    for (const pgno of [...writes].sort((a, b) => a - b)) enc.encodePage(pgno, this.image.subarray((pgno - 1) * this.pageSize, pgno * this.pageSize));
    enc.setPostApplyChecksum(post);
    enc.close();
    if (advance) {
      this.txid = max;
      this.checksum = post;
    }
    const path = join(this.tmpDir, `recv-${++this.n}.ltx`);
    writeFileSync(path, Buffer.concat(chunks));
    return path;
  }

  private resize(pages: number): void {
    const want = pages * this.pageSize;
    if (this.image.length < want) this.image = Buffer.concat([this.image, Buffer.alloc(want - this.image.length)]);
    else this.image = this.image.subarray(0, want);
  }

  private pageOf(fill: number, pgno: number, pages: number, wal: boolean): Buffer {
    if (this.pageSize === PAGE) return page(fill, pgno, pages, wal);
    const p = Buffer.alloc(this.pageSize, fill);
    if (pgno === 1) {
      p.write('SQLite format 3\0', 0, 'latin1');
      p.writeUInt16BE(this.pageSize === 65536 ? 1 : this.pageSize, 16);
      p[18] = p[19] = wal ? 2 : 1;
      p.writeUInt32BE(pages, 28);
    }
    return p;
  }
}

function txEvents(events: StoreEvent[]): Extract<StoreEvent, { type: 'tx' }>[] {
  return events.filter((e): e is Extract<StoreEvent, { type: 'tx' }> => e.type === 'tx');
}

describe('store: applying received LTX files (replica)', () => {
  let h: Harness;
  let primary: ModelPrimary;
  beforeEach(() => {
    h = harness();
    primary = new ModelPrimary(join(h.dataDir, 'tmp'));
  });
  afterEach(() => {
    rmSync(h.base, { recursive: true, force: true });
  });

  function replicaDB(name = 'r.db'): DB {
    return h.open().createDB(name);
  }

  /** The replica's store in the harness's data folder, on `io`. */
  function openStore(io: CrashIO, post: (e: StoreEvent) => void = () => {}): Store {
    const store = new Store({ dataDir: h.dataDir, compress: false, strictVerify: true, nodeId: 'r' }, post, () => {}, io);
    store.open();
    return store;
  }

  test('incremental files apply in sequence: file, position, LTX files, tx events, merged ranges', () => {
    const db = replicaDB();
    let r = applyLTX(db, primary.commit(3, [1, 2, 3], 1), null);
    assert.deepEqual(r.ranges, [{ off: 0, len: 3 * PAGE }]);
    assert.equal(r.wholeFile, true, 'TXID 1 is a snapshot');
    r = applyLTX(db, primary.commit(4, [2, 4], 2), null);
    assert.deepEqual(r.ranges, [{ off: PAGE, len: PAGE }, { off: 3 * PAGE, len: PAGE }]);
    assert.equal(r.wholeFile, false);
    r = applyLTX(db, primary.commit(4, [3, 4], 3), null);
    assert.deepEqual(r.ranges, [{ off: 2 * PAGE, len: 2 * PAGE }]);
    assert.ok(readFileSync(db.databasePath).equals(primary.image), 'database file equals the primary image');
    assert.equal(db.pos.txid, 3n);
    assert.equal(db.pos.postApplyChecksum, primary.checksum);
    assert.equal(db.pageN, 4);
    assert.equal(db.timestamp, 1_700_000_000_003);
    assert.deepEqual(ltxNames(db), [1n, 2n, 3n].map((t) => formatFilename(t, t)));
    assert.deepEqual(readdirSync(join(h.dataDir, 'tmp')), [], 'received files moved out of tmp/');
    assert.deepEqual(
      txEvents(h.events).map((e) => [e.txid, e.pages]),
      [
        ['0000000000000001', 3],
        ['0000000000000002', 2],
        ['0000000000000003', 2],
      ],
    );
    assert.equal(txEvents(h.events)[2]!.checksum, formatHex16(primary.checksum));
  });

  test('a file that does not continue the position changes nothing', () => {
    const db = replicaDB();
    applyLTX(db, primary.commit(2, [1, 2], 1), null);
    primary.commit(2, [2], 2); // TXID 2 never reaches the replica
    const before = readFileSync(db.databasePath);
    const gap = primary.commit(2, [2], 3);
    assert.throws(() => applyLTX(db, gap, null), (err: unknown) => {
      assert.ok(err instanceof ApplyPosMismatchError);
      assert.equal(err.local.txid, 1n);
      assert.equal(err.expected.txid, 2n);
      assert.match(err.message, /position mismatch.*0000000000000003-0000000000000003\.ltx/);
      return true;
    });
    assert.ok(readFileSync(db.databasePath).equals(before));
    assert.equal(db.pos.txid, 1n);
    assert.deepEqual(ltxNames(db), [formatFilename(1n, 1n)]);
    assert.ok(existsSync(gap), 'the refused file stays where it was');
    assert.equal(txEvents(h.events).length, 1);
  });

  test('a snapshot over diverged local data quarantines it first (folder, report.json, copies, event)', () => {
    const db = replicaDB();
    // Local history the primary never had: two local transactions.
    tx(db, 0x11, 2);
    tx(db, 0x22, 3);
    const local = readFileSync(db.databasePath);
    const localPos = db.pos;
    primary.commit(4, [1, 2, 3, 4], 5);
    primary.commit(4, [4], 6);
    const r = applyLTX(db, primary.snapshot(), { reason: 'diverged', primary: 'primary-host' });
    assert.ok(r.quarantineDir !== null);
    assert.ok(r.quarantineDir.startsWith(join(h.dataDir, 'quarantine', 'r.db')));
    const rep = report(r.quarantineDir);
    assert.equal(rep.db, 'r.db');
    assert.equal(rep.primary, 'primary-host');
    assert.match(String(rep.reason), /diverged/);
    assert.deepEqual(rep.localPosition, { txid: formatHex16(localPos.txid), postApplyChecksum: formatHex16(localPos.postApplyChecksum) });
    assert.deepEqual(rep.snapshotPosition, { txid: '0000000000000002', postApplyChecksum: formatHex16(primary.checksum) });
    assert.ok(readFileSync(join(r.quarantineDir, 'database')).equals(local), 'local database copied as it was');
    assert.deepEqual(readdirSync(join(r.quarantineDir, 'ltx')), [formatFilename(1n, 1n), formatFilename(2n, 2n)]);
    const q = h.events.filter((e) => e.type === 'quarantine');
    assert.deepEqual(q, [{ type: 'quarantine', db: 'r.db', reason: rep.reason, dir: r.quarantineDir }]);
    // The snapshot is the database now, and its only LTX file.
    assert.ok(readFileSync(db.databasePath).equals(primary.image));
    assert.deepEqual(ltxNames(db), [formatFilename(1n, 2n)]);
    assert.equal(db.pos.txid, 2n);
    assert.equal(r.wholeFile, true);
    // Nothing under dbs/ but the database.
    assert.deepEqual(readdirSync(join(h.dataDir, 'dbs')), ['r.db']);
  });

  test('a snapshot without quarantine replaces local data and makes no folder', () => {
    const db = replicaDB();
    tx(db, 0x11, 5);
    primary.commit(2, [1, 2], 9);
    const r = applyLTX(db, primary.snapshot(), null);
    assert.equal(r.quarantineDir, null);
    assert.equal(existsSync(join(h.dataDir, 'quarantine')), false);
    assert.ok(readFileSync(db.databasePath).equals(primary.image), 'shrunk to the snapshot');
    assert.deepEqual(r.ranges, [{ off: 0, len: 5 * PAGE }], 'written pages plus the cut-off tail');
    assert.deepEqual(ltxNames(db), [formatFilename(1n, 1n)]);
  });

  test('a snapshot may change the page size; an incremental file may not', () => {
    const db = replicaDB();
    applyLTX(db, primary.commit(2, [1, 2], 1), null);
    const big = new ModelPrimary(join(h.dataDir, 'tmp'), 4096);
    big.commit(3, [1, 2, 3], 4);
    big.commit(3, [2], 5);
    applyLTX(db, big.snapshot(), null);
    assert.equal(db.pageSize, 4096);
    assert.ok(readFileSync(db.databasePath).equals(big.image));
    applyLTX(db, big.commit(3, [3], 6), null);
    assert.equal(db.pos.postApplyChecksum, big.checksum);
    // Back on the 1024-byte primary's chain: its incremental file is refused.
    const other = new ModelPrimary(join(h.dataDir, 'tmp2'));
    other.txid = 3n;
    other.checksum = big.checksum;
    other.image = Buffer.from(big.image.subarray(0, 3 * 1024));
    assert.throws(() => applyLTX(db, other.commit(3, [2], 7), null), /page size 1024/);
    assert.equal(db.pos.txid, 3n);
  });

  test('commit 0 deletes the database and its side files; a later file re-creates it', () => {
    const db = replicaDB();
    applyLTX(db, primary.commit(2, [1, 2], 1), null);
    writeFileSync(db.shmPath, Buffer.alloc(100));
    const r = applyLTX(db, primary.drop(), null);
    assert.equal(r.deleted, true);
    for (const p of [db.databasePath, db.shmPath, db.walPath, db.journalPath]) assert.equal(existsSync(p), false, p);
    assert.equal(db.pageN, 0);
    assert.equal(db.pos.txid, 2n);
    assert.equal(db.pos.postApplyChecksum, 1n << 63n);
    applyLTX(db, primary.commit(1, [1], 3), null);
    assert.ok(readFileSync(db.databasePath).equals(primary.image));
    assert.equal(db.pos.txid, 3n);
  });

  test('a crash after the rename into ltx/ but before the pages: start-up applies the file, no re-base', () => {
    let db = replicaDB();
    applyLTX(db, primary.commit(3, [1, 2, 3], 1), null);
    const next = primary.commit(3, [2, 3], 2);
    // What applyLTX does first, then "crash".
    renameSync(next, join(db.ltxDir, formatFilename(2n, 2n)));
    const store = h.open();
    db = store.db('r.db')!;
    assert.ok(readFileSync(db.databasePath).equals(primary.image), 'database matches the LTX chain');
    assert.equal(db.pos.txid, 2n);
    assert.equal(db.pos.postApplyChecksum, primary.checksum);
    assert.equal(existsSync(join(h.dataDir, 'forensic')), false, 'no re-base, no forensic folder');
    assert.deepEqual(ltxNames(db), [formatFilename(1n, 1n), formatFilename(2n, 2n)]);
  });

  test('applies grouped without a database fsync lose their pages at a power loss; start-up applies the group again', () => {
    const io = new CrashIO({ shadowDir: join(h.base, 'shadow') });
    const open = (): Store => openStore(io);
    let db = open().createDB('r.db');
    applyLTX(db, primary.commit(4, [1, 2, 3, 4], 1), null);
    // A group: every page changes, and the database grows and shrinks.
    applyLTX(db, primary.commit(6, [1, 2, 5, 6], 2), null, false);
    applyLTX(db, primary.commit(6, [3, 4], 3), null, false);
    applyLTX(db, primary.commit(3, [1, 2], 4), null, false);
    assert.equal(db.unsyncedApplies, 3);
    assert.ok(existsSync(db.applyGroupPath), 'the group marker is there');
    const synced = io.syncs;
    io.simulatePowerLoss();
    assert.notDeepEqual(readFileSync(db.databasePath), primary.image, 'the unsynced pages are gone');
    db = open().db('r.db')!;
    assert.ok(readFileSync(db.databasePath).equals(primary.image), 'database matches the LTX chain again');
    assert.equal(db.pos.txid, 4n);
    assert.equal(db.pos.postApplyChecksum, primary.checksum);
    assert.equal(existsSync(join(h.dataDir, 'forensic')), false, 'no re-base, no forensic folder');
    assert.equal(existsSync(db.applyGroupPath), false, 'the marker is gone once the group is durable');
    assert.ok(synced > 0);
  });

  test('the syncer thread syncs applied pages: the marker goes only once every apply of the group is reported durable', () => {
    const io = new CrashIO({ shadowDir: join(h.base, 'shadow') });
    const db = openStore(io).createDB('r.db');
    applyLTX(db, primary.commit(4, [1, 2, 3, 4], 1), null);
    applyLTX(db, primary.commit(4, [1], 2), null, false);
    applyLTX(db, primary.commit(4, [2], 3), null, false);
    const job = db.takeGroupSync();
    assert.ok(job !== null);
    assert.equal(job.databasePath, db.databasePath);
    applyLTX(db, primary.commit(4, [3], 4), null, false);
    syncGroup(io, job, new SyncfsState(() => {}));
    assert.equal(db.groupSyncDone(job.gen, true), null);
    assert.equal(db.unsyncedApplies, 1, 'the apply after the hand-over still waits');
    assert.ok(existsSync(db.applyGroupPath));
    const next = db.takeGroupSync();
    assert.ok(next !== null);
    syncGroup(io, next, new SyncfsState(() => {}));
    db.groupSyncDone(next.gen, true);
    assert.equal(db.unsyncedApplies, 0);
    assert.equal(existsSync(db.applyGroupPath), false, 'the group is durable: marker gone');
    io.simulatePowerLoss();
    assert.ok(readFileSync(db.databasePath).equals(primary.image), 'every applied page survived');
  });

  test('a group synced on the FUSE thread while the syncer works on it: the late report credits nothing twice', () => {
    const db = replicaDB();
    applyLTX(db, primary.commit(2, [1, 2], 1), null);
    applyLTX(db, primary.commit(2, [2], 2), null, false);
    const job = db.takeGroupSync();
    assert.ok(job !== null);
    db.syncAppliedPages();
    applyLTX(db, primary.commit(2, [1], 3), null, false);
    assert.equal(db.groupSyncDone(job.gen, true), null);
    assert.equal(db.unsyncedApplies, 1, 'the newer apply is not taken for synced');
    assert.ok(existsSync(db.applyGroupPath));
  });

  test(`at most ${MAX_APPLY_GROUP} applies in a row leave the database unsynced; the last of a group syncs it`, () => {
    const db = replicaDB();
    applyLTX(db, primary.commit(2, [1, 2], 1), null);
    for (let i = 1; i < MAX_APPLY_GROUP; i++) applyLTX(db, primary.commit(2, [2], i + 1), null, false);
    assert.equal(db.unsyncedApplies, MAX_APPLY_GROUP - 1);
    applyLTX(db, primary.commit(2, [2], 100), null, false);
    assert.equal(db.unsyncedApplies, 0, 'the group is full: synced anyway');
    assert.equal(existsSync(db.applyGroupPath), false);
    applyLTX(db, primary.commit(2, [2], 101), null, false);
    applyLTX(db, primary.commit(2, [2], 102), null, true);
    assert.equal(db.unsyncedApplies, 0);
  });

  test('files applied together: renamed with one folder fsync; the same database, position, LTX files and tx events as one by one', () => {
    const io = new CrashIO({ shadowDir: join(h.base, 'shadow'), trace: true });
    const db = openStore(io, (e) => h.events.push(e)).createDB('r.db');
    applyLTX(db, primary.commit(4, [1, 2, 3, 4], 1), null);
    io.trace!.length = 0;
    const batch = [primary.commit(6, [1, 5, 6], 2), primary.commit(6, [3], 3), primary.commit(3, [1, 2], 4)];
    const r = applyLTXFiles(db, batch, null, false);
    assert.ok(readFileSync(db.databasePath).equals(primary.image), 'database file equals the primary image');
    assert.deepEqual(db.pos, { txid: 4n, postApplyChecksum: primary.checksum });
    assert.equal(db.pageN, 3);
    assert.deepEqual(ltxNames(db), [1n, 2n, 3n, 4n].map((t) => formatFilename(t, t)));
    assert.deepEqual(readdirSync(join(h.dataDir, 'tmp')), []);
    assert.deepEqual(
      txEvents(h.events).map((e) => [e.txid, e.pages, e.commit]),
      [
        ['0000000000000001', 4, 4],
        ['0000000000000002', 3, 6],
        ['0000000000000003', 1, 6],
        ['0000000000000004', 2, 3],
      ],
    );
    // Pages 1-3 written, 5-6 written then cut off, 4 cut off: all of it, merged.
    assert.deepEqual(r.ranges, [{ off: 0, len: 6 * PAGE }]);
    assert.equal(r.wholeFile, false);
    const syncs = io.trace!.filter((t) => /^\d+ (fsync|fdatasync|fsyncDir) /.test(t));
    assert.deepEqual(
      syncs.map((t) => t.replace(/^\d+ /, '')),
      [`fsyncDir ${db.ltxDir}`],
      'one folder fsync for the three renames; the database fsync is left to the group',
    );
    assert.equal(db.unsyncedApplies, 3);
    assert.ok(existsSync(db.applyGroupPath));
  });

  test('files applied together are checked first: one that does not continue the one before, or a snapshot among them, changes nothing', () => {
    const db = replicaDB();
    applyLTX(db, primary.commit(2, [1, 2], 1), null);
    const before = readFileSync(db.databasePath);
    const second = primary.commit(2, [2], 2);
    primary.commit(2, [1], 3); // never reaches the replica
    const fourth = primary.commit(2, [2], 4);
    assert.throws(() => applyLTXFiles(db, [second, fourth], null, false), ApplyPosMismatchError);
    const snap = primary.snapshot();
    assert.throws(() => applyLTXFiles(db, [second, snap], null, false), InvalidWriteError);
    assert.throws(() => applyLTXFiles(db, [second, fourth], { reason: 'diverged', primary: 'p' }, false), InvalidWriteError);
    assert.ok(readFileSync(db.databasePath).equals(before));
    assert.equal(db.pos.txid, 1n);
    assert.deepEqual(ltxNames(db), [formatFilename(1n, 1n)]);
    for (const f of [second, fourth, snap]) assert.ok(existsSync(f), 'refused files stay where they were');
  });

  for (const [loss, syncDatabase, placed] of [
    ['process', false, false],
    ['power', false, false],
    ['process', true, false],
    ['power', true, false],
    ['process', false, true],
    ['power', false, true],
  ] as const) {
    const received = placed ? 'placed in ltx/ as <name>.received by the replica client' : 'in tmp/';
    test(`files applied together (syncDatabase ${syncDatabase}, ${received}) survive a ${loss} loss at every change: start-up reaches a position of the chain with its exact image`, () => {
      let points = 0;
      const images = new Map<bigint, Buffer>();
      for (let killAt = 1; ; killAt++) {
        rmSync(h.base, { recursive: true, force: true });
        h = harness();
        primary = new ModelPrimary(join(h.dataDir, 'tmp'));
        const io = new CrashIO({ shadowDir: join(h.base, 'shadow'), count: 'mutation' });
        const open = (): Store => openStore(io);
        let db = open().createDB('r.db');
        applyLTX(db, primary.commit(4, [1, 2, 3, 4], 1), null);
        images.set(1n, Buffer.from(primary.image));
        const batch = [6, 6, 3].map((pages, i) => {
          let path = primary.commit(pages, i === 1 ? [3, 4] : [1, 2, ...(pages > 4 ? [5, 6] : [])], i + 2);
          images.set(primary.txid, Buffer.from(primary.image));
          if (placed) {
            // Durable there, as the replica client leaves it (CrashIO takes what it did not write as synced).
            const to = join(db.ltxDir, formatFilename(primary.txid, primary.txid) + RECEIVED_SUFFIX);
            renameSync(path, to);
            path = to;
          }
          return path;
        });
        io.setKillAt(killAt, 'mutation');
        try {
          applyLTXFiles(db, batch, null, syncDatabase);
        } catch (err) {
          // The crash, or the fatal error wrapping it.
          if (!(err instanceof SimulatedCrash) && !String(err).includes('simulated crash')) throw err;
        }
        const completed = io.crashed === null;
        io.setKillAt(0);
        io.restart();
        if (loss === 'power') io.simulatePowerLoss();
        db = open().db('r.db')!;
        const want = images.get(db.pos.txid);
        assert.ok(want !== undefined, `kill point ${killAt}: position ${db.pos.txid} is not one of the chain`);
        assert.ok(readFileSync(db.databasePath).equals(want), `kill point ${killAt}: the database is the image of TXID ${db.pos.txid}`);
        if (completed) {
          if (loss === 'process' || syncDatabase) assert.equal(db.pos.txid, 4n);
          assert.ok(points > 10, `only ${points} kill points`);
          break;
        }
        points++;
        if (killAt > 200) throw new Error('kill points never end');
      }
    });
  }

  test('a received file left torn in ltx/ (its sync never finished): set aside; the group before it is applied again; nothing re-based', () => {
    const io = new CrashIO({ shadowDir: join(h.base, 'shadow') });
    const open = (): Store => openStore(io);
    let db = open().createDB('r.db');
    applyLTX(db, primary.commit(4, [1, 2, 3, 4], 1), null);
    applyLTX(db, primary.commit(4, [1, 2], 2), null, false);
    applyLTX(db, primary.commit(4, [3], 3), null, false);
    const image = Buffer.from(primary.image);
    const pos = db.pos;
    // What a power loss can leave on ext4: the rename into ltx/ committed, the data not.
    const next = primary.commit(4, [4], 4);
    const torn = join(db.ltxDir, formatFilename(4n, 4n) + RECEIVED_SUFFIX);
    writeFileSync(torn, readFileSync(next).subarray(0, 150));
    io.simulatePowerLoss();
    assert.notDeepEqual(readFileSync(db.databasePath), image, 'the group lost its unsynced pages');
    db = open().db('r.db')!;
    assert.deepEqual(db.pos, pos);
    assert.ok(readFileSync(db.databasePath).equals(image), 'database is the image of TXID 3 again');
    assert.deepEqual(ltxNames(db), [1n, 2n, 3n].map((t) => formatFilename(t, t)));
    assert.equal(existsSync(torn), false);
    const cases = readdirSync(join(h.dataDir, 'forensic', 'r.db'));
    assert.equal(cases.length, 1, 'the torn file is set aside, not deleted');
    assert.match(readFileSync(join(h.dataDir, 'forensic', 'r.db', cases[0]!, 'report.json'), 'utf8'), /never applied/);
  });

  test('files this database has already (its own writes under a HALT lock, streamed back): dropped, nothing applied; a different file is refused', () => {
    const db = replicaDB();
    applyLTX(db, primary.commit(3, [1, 2, 3], 1), null);
    // The replica wrote TXIDs 2 and 3 itself: the same files as the primary's copies.
    const own2 = primary.commit(3, [2], 2);
    const echo2 = join(h.base, 'echo2.ltx');
    copyFileSync(own2, echo2);
    applyLTX(db, own2, null);
    const own3 = primary.commit(3, [3], 3);
    const echo3 = join(h.base, 'echo3.ltx');
    copyFileSync(own3, echo3);
    applyLTX(db, own3, null);
    const events = txEvents(h.events).length;
    const image = readFileSync(db.databasePath);
    // Back from the primary, late (TXID 2 after 3) and at the position (3).
    for (const echo of [echo2, echo3]) {
      const r = applyLTX(db, echo, null);
      assert.deepEqual([r.ranges, r.wholeFile, r.shmPage], [[], false, null]);
      assert.ok(!existsSync(echo), 'the copy is removed');
    }
    assert.deepEqual([db.pos.txid, txEvents(h.events).length], [3n, events]);
    assert.ok(readFileSync(db.databasePath).equals(image));
    // Another history's TXID 2 is not "already here".
    const other = new ModelPrimary(join(h.base, 'other'));
    other.commit(3, [1, 2, 3], 1);
    assert.throws(() => applyLTX(db, other.commit(3, [1], 2), null), ApplyPosMismatchError);
  });

  test('a database created while the replica client already placed received files for it keeps them (they are queued, not left by a crash)', () => {
    const store = h.open();
    const dir = join(h.dataDir, 'dbs', 'new.db', 'ltx');
    mkdirSync(dir, { recursive: true });
    const snapshot = primary.commit(2, [1, 2], 1);
    const queued = join(dir, formatFilename(2n, 2n) + RECEIVED_SUFFIX);
    renameSync(primary.commit(2, [2], 2), queued);
    const db = store.createDB('new.db');
    assert.ok(existsSync(queued), 'the queued file is still there');
    assert.ok(!existsSync(join(h.dataDir, 'forensic')), 'nothing set aside');
    applyLTX(db, snapshot, null);
    applyLTXFiles(db, [queued], null);
    assert.deepEqual([db.pos.txid, db.pos.postApplyChecksum], [2n, primary.checksum]);
  });

  test('a whole received file left in ltx/ (an apply interrupted after it, or one never started) is kept and applied; one that does not continue the chain is set aside', () => {
    const io = new CrashIO({ shadowDir: join(h.base, 'shadow') });
    const open = (): Store => openStore(io);
    let db = open().createDB('r.db');
    applyLTX(db, primary.commit(4, [1, 2, 3, 4], 1), null);
    const next = primary.commit(5, [1, 5], 2);
    // The process died after the file's sync, with one of its pages written.
    renameSync(next, join(db.ltxDir, formatFilename(2n, 2n) + RECEIVED_SUFFIX));
    const fd = openSync(db.databasePath, 'r+');
    writeSync(fd, primary.image.subarray(4 * PAGE, 5 * PAGE), 0, PAGE, 4 * PAGE);
    closeSync(fd);
    // Queued behind it, never applied.
    renameSync(primary.commit(5, [2], 3), join(db.ltxDir, formatFilename(3n, 3n) + RECEIVED_SUFFIX));
    const image = Buffer.from(primary.image);
    const pos = { txid: 3n, postApplyChecksum: primary.checksum };
    // One that does not continue the chain (TXID 4 never arrived).
    primary.commit(5, [3], 4);
    renameSync(primary.commit(5, [4], 5), join(db.ltxDir, formatFilename(5n, 5n) + RECEIVED_SUFFIX));
    db = open().db('r.db')!;
    assert.deepEqual(db.pos, pos);
    assert.ok(readFileSync(db.databasePath).equals(image), 'database is the image of TXID 3');
    assert.deepEqual(ltxNames(db), [1n, 2n, 3n].map((t) => formatFilename(t, t)));
    const cases = readdirSync(join(h.dataDir, 'forensic', 'r.db'));
    assert.equal(cases.length, 1);
    assert.match(readFileSync(join(h.dataDir, 'forensic', 'r.db', cases[0]!, 'report.json'), 'utf8'), /does not continue/);
  });

  test('the wal-index header is rewritten: iChange + 1, mxFrame 0, nPage; the rest of the block kept', () => {
    const db = replicaDB();
    applyLTX(db, primary.commit(2, [1, 2], 1, true), null);
    assert.equal(db.mode, 'wal');
    const shm = Buffer.alloc(SHM_REGION_SIZE);
    buildShmHeader(
      { version: 3007000, change: 41, isInit: 1, bigEndianChecksum: false, pageSize: PAGE, mxFrame: 9, nPage: 2, frameChecksum: [1, 2], salt1: 3, salt2: 4 },
      { nBackfill: 3, readMarks: [0, 9, 0xffffffff, 0xffffffff, 0xffffffff], nBackfillAttempted: 9 },
    ).copy(shm, 0);
    shm.fill(0xab, 200, 300);
    writeFileSync(db.shmPath, shm);
    const r = applyLTX(db, primary.commit(3, [3], 2, true), null);
    assert.ok(r.shmPage !== null);
    assert.ok(Buffer.from(r.shmPage).equals(readFileSync(db.shmPath).subarray(0, r.shmPage.length)));
    const after = readFileSync(db.shmPath);
    assert.equal(after.length, SHM_REGION_SIZE);
    const parsed = parseShmHeader(after);
    assert.equal(parsed.valid, true);
    assert.equal(parsed.copy1.change, 42);
    assert.equal(parsed.copy1.mxFrame, 0);
    assert.equal(parsed.copy1.nPage, 3);
    assert.equal(parsed.checkpoint.nBackfill, 0);
    assert.ok(after.subarray(200, 300).equals(Buffer.alloc(100, 0xab)), 'bytes past the header kept');
  });
});
