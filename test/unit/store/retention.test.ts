import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, renameSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { decodeFileSync } from '../../../src/ltx/index.js';
import type { DB } from '../../../src/store/db.js';
import { RealIO } from '../../../src/store/io.js';
import { enforceRetention } from '../../../src/store/retention.js';
import { Store } from '../../../src/store/store.js';
import { type Harness, harness, ltxNames, tx } from './store-fixture.js';

const MIN = 60_000;

/** Real I/O that counts folder listings and file stats for mtimes. */
class ScanCounter extends RealIO {
  listings = 0;
  mtimes = 0;
  override readdir(path: string): string[] {
    this.listings++;
    return super.readdir(path);
  }
  override mtimeOf(path: string): number | null {
    this.mtimes++;
    return super.mtimeOf(path);
  }
}

/** Sets the mtime of LTX file `txid` of `db` to `ageMs` before the harness clock. */
function ageOne(h: Harness, db: DB, txid: number, ageMs: number): void {
  const t = (h.now - ageMs) / 1000;
  utimesSync(join(db.ltxDir, ltxName(txid)), t, t);
}

function ltxName(txid: number): string {
  const hex = txid.toString(16).padStart(16, '0');
  return `${hex}-${hex}.ltx`;
}

/** Sets the mtime of every LTX file of `db` to `ages[i]` ms before the harness clock. */
function age(h: Harness, db: DB, ages: number[]): void {
  ltxNames(db).forEach((name, i) => {
    const t = (h.now - ages[i]!) / 1000;
    utimesSync(join(db.ltxDir, name), t, t);
  });
}

describe('store: LTX retention', () => {
  let h: Harness;
  beforeEach(() => {
    h = harness();
  });
  afterEach(() => {
    rmSync(h.base, { recursive: true, force: true });
  });

  test('by age: files older than retention go, the newest stays even when old', () => {
    const store = h.open({ retentionMs: 10 * MIN, retentionMonitorIntervalMs: MIN });
    const db = store.createDB('a.db');
    for (let k = 1; k <= 4; k++) tx(db, k, 2);
    age(h, db, [30 * MIN, 20 * MIN, 5 * MIN, 1 * MIN]);
    let r = enforceRetention(db, h.now);
    assert.deepEqual(r.removed, ['0000000000000001-0000000000000001.ltx', '0000000000000002-0000000000000002.ltx']);
    assert.equal(r.count, 2);
    assert.deepEqual(ltxNames(db), ['0000000000000003-0000000000000003.ltx', '0000000000000004-0000000000000004.ltx']);
    // An hour later everything is old; the newest file is still kept.
    h.now += 60 * MIN;
    r = enforceRetention(db, h.now);
    assert.deepEqual(r.removed, ['0000000000000003-0000000000000003.ltx']);
    assert.deepEqual(ltxNames(db), ['0000000000000004-0000000000000004.ltx']);
    assert.equal(r.bytes, statSync(join(db.ltxDir, ltxNames(db)[0]!)).size);
  });

  test("while this node uploads backups, age keeps the files the backup lacks; the byte cap does not wait", () => {
    const store = h.open({ retentionMs: 10 * MIN, retentionMonitorIntervalMs: MIN });
    const db = store.createDB('a.db');
    for (let k = 1; k <= 5; k++) tx(db, k, 2);
    age(h, db, [50 * MIN, 40 * MIN, 30 * MIN, 20 * MIN, 15 * MIN]);
    store.setBackupHWM('a.db', 2n);
    assert.deepEqual(enforceRetention(db, h.now).removed, ['0000000000000001-0000000000000001.ltx', '0000000000000002-0000000000000002.ltx']);
    // The sweep by age from the oldest file kept stops at the mark too.
    store.setBackupHWM('a.db', 3n);
    db.lastRetentionAt = null;
    tx(db, 6, 2);
    assert.deepEqual(ltxNames(db).slice(0, 1), ['0000000000000004-0000000000000004.ltx']);
    // The byte cap still removes what it must.
    const sizes = ltxNames(db).map((n) => statSync(join(db.ltxDir, n)).size);
    // (Monitor interval 0: no sweep when the store opens, only the one below.)
    const capped = h.open({ retentionMs: 10 * MIN, retentionMaxBytes: sizes.at(-1)! + 1, retentionMonitorIntervalMs: 0 });
    assert.equal(ltxNames(capped.db('a.db')!).length, 3);
    capped.setBackupHWM('a.db', 0n);
    enforceRetention(capped.db('a.db')!, h.now);
    assert.deepEqual(ltxNames(capped.db('a.db')!), ['0000000000000006-0000000000000006.ltx']);
  });

  test('no backup mark (null): age alone decides', () => {
    const store = h.open({ retentionMs: 10 * MIN, retentionMonitorIntervalMs: MIN });
    const db = store.createDB('a.db');
    for (let k = 1; k <= 3; k++) tx(db, k, 2);
    age(h, db, [50 * MIN, 40 * MIN, 30 * MIN]);
    store.setBackupHWM('a.db', 1n);
    store.setBackupHWM('a.db', null);
    assert.deepEqual(enforceRetention(db, h.now).removed.length, 2);
  });

  test('by total bytes: oldest files go until the total is at most the cap; 0 is off', () => {
    const store = h.open({ retentionMs: 0, retentionMaxBytes: 0 });
    const db = store.createDB('a.db');
    for (let k = 1; k <= 5; k++) tx(db, k, 3);
    assert.deepEqual(enforceRetention(db, h.now).removed, [], 'both off');
    const sizes = ltxNames(db).map((n) => statSync(join(db.ltxDir, n)).size);
    const cap = sizes[3]! + sizes[4]! + 1;
    const store2 = h.open({ retentionMs: 0, retentionMaxBytes: cap });
    const db2 = store2.db('a.db')!;
    // The open swept already (once at open).
    assert.deepEqual(ltxNames(db2), ['0000000000000004-0000000000000004.ltx', '0000000000000005-0000000000000005.ltx']);
    // A cap below one file still keeps the newest.
    const store3 = h.open({ retentionMs: 0, retentionMaxBytes: 1 });
    assert.deepEqual(ltxNames(store3.db('a.db')!), ['0000000000000005-0000000000000005.ltx']);
    // The position and the next commit are unaffected.
    tx(store3.db('a.db')!, 9, 3);
    assert.equal(decodeFileSync(join(db2.ltxDir, '0000000000000006-0000000000000006.ltx')).header.minTXID, 6n);
  });

  test('lazy: a commit sweeps only when the monitor interval passed since the last sweep', () => {
    const store = h.open({ retentionMs: 10 * MIN, retentionMonitorIntervalMs: MIN });
    const db = store.createDB('a.db');
    tx(db, 1, 1);
    tx(db, 2, 1);
    age(h, db, [30 * MIN, 30 * MIN]);
    // The first commit swept (no sweep before); 30 s later: no sweep yet.
    h.now += 30_000;
    tx(db, 3, 1);
    assert.equal(ltxNames(db).length, 3);
    h.now += 31_000;
    tx(db, 4, 1);
    assert.deepEqual(ltxNames(db), ['0000000000000003-0000000000000003.ltx', '0000000000000004-0000000000000004.ltx']);
    // A monitor interval of 0 turns retention off, as in LiteFS (also at open).
    age(h, db, [30 * MIN, 30 * MIN]);
    const off = h.open({ retentionMs: 10 * MIN, retentionMonitorIntervalMs: 0 });
    h.now += 10 * MIN;
    tx(off.db('a.db')!, 5, 1);
    assert.equal(ltxNames(db).length, 3);
  });

  test('a re-base snapshot 1-N sorts first by name but counts as newest', () => {
    const store = h.open({ retentionMs: 10 * MIN });
    const db = store.createDB('a.db');
    tx(db, 1, 1);
    tx(db, 2, 1);
    // Stand-in for a re-base: the newest file is named 1-5.
    renameSync(join(db.ltxDir, '0000000000000001-0000000000000001.ltx'), join(db.ltxDir, '0000000000000001-0000000000000005.ltx'));
    age(h, db, [30 * MIN, 30 * MIN]);
    const r = enforceRetention(db, h.now);
    assert.deepEqual(r.removed, ['0000000000000002-0000000000000002.ltx']);
    assert.deepEqual(ltxNames(db), ['0000000000000001-0000000000000005.ltx']);
  });

  test('after a full sweep, sweeps by age start at the oldest file kept and stat only what they remove', () => {
    const io = new ScanCounter();
    const store = new Store({ dataDir: h.dataDir, compress: false, strictVerify: false, nodeId: 'node1', retentionMs: 10 * MIN, retentionMonitorIntervalMs: MIN }, () => {}, () => {}, io, () => h.now);
    store.open();
    const db = store.createDB('a.db');
    for (let k = 1; k <= 50; k++) tx(db, k, 1);
    for (let k = 1; k <= 50; k++) ageOne(h, db, k, k <= 40 ? 30 * MIN : 1 * MIN);
    const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    /** Commit `k`, `later` ms on: its sweep lists no folder, stats `stats` files and leaves `left`. */
    const commitAndSweep = (k: number, later: number, stats: number, left: number[]): void => {
      h.now += later;
      io.listings = 0;
      io.mtimes = 0;
      tx(db, k, 1);
      assert.equal(io.listings, 0, `commit ${k}: no listing`);
      assert.equal(io.mtimes, stats, `commit ${k}: the files removed and the first kept`);
      assert.deepEqual(ltxNames(db), left.map(ltxName));
    };
    // The first commit's sweep listed the folder (one file); this one starts at 1.
    commitAndSweep(51, MIN + 1, 41, range(41, 51));
    // The next one starts at 41: five files removed, one kept.
    for (let k = 41; k <= 45; k++) ageOne(h, db, k, 30 * MIN);
    commitAndSweep(52, MIN + 1, 6, range(46, 52));
    // Everything old: all but the newest go (the newest is kept without a look).
    commitAndSweep(53, 60 * MIN, 7, [53]);
  });

  test('a file older than where the sweep would start sends it back to a full sweep', () => {
    const store = h.open({ retentionMs: 10 * MIN, retentionMonitorIntervalMs: MIN });
    const db = store.createDB('a.db');
    for (let k = 1; k <= 6; k++) tx(db, k, 1);
    for (let k = 1; k <= 6; k++) ageOne(h, db, k, k <= 3 ? 30 * MIN : 1 * MIN);
    h.now += MIN + 1;
    tx(db, 7, 1);
    assert.deepEqual(ltxNames(db), [4, 5, 6, 7].map(ltxName));
    // File 3 is back (restored by hand, say), old: the sweep from 4 would miss it.
    copyFileSync(join(db.ltxDir, ltxName(4)), join(db.ltxDir, ltxName(3)));
    ageOne(h, db, 3, 30 * MIN);
    h.now += MIN + 1;
    tx(db, 8, 1);
    assert.deepEqual(ltxNames(db), [4, 5, 6, 7, 8].map(ltxName));
    // A snapshot 1-N where the chain should go on: the sweep lists the folder and removes by TXID order.
    renameSync(join(db.ltxDir, ltxName(5)), join(db.ltxDir, '0000000000000001-0000000000000005.ltx'));
    for (const k of [4, 6]) ageOne(h, db, k, 30 * MIN);
    utimesSync(join(db.ltxDir, '0000000000000001-0000000000000005.ltx'), (h.now - 30 * MIN) / 1000, (h.now - 30 * MIN) / 1000);
    h.now += MIN + 1;
    tx(db, 9, 1);
    assert.deepEqual(ltxNames(db), [7, 8, 9].map(ltxName));
  });

  test('a sweep by age removes at most 256 files; the next commit 100 ms later goes on', () => {
    const store = h.open({ retentionMs: 10 * MIN, retentionMonitorIntervalMs: MIN, strictVerify: false });
    const db = store.createDB('a.db');
    for (let k = 1; k <= 300; k++) tx(db, k & 0xff, 1);
    for (let k = 1; k <= 300; k++) ageOne(h, db, k, 30 * MIN);
    h.now += MIN + 1;
    tx(db, 1, 1);
    assert.equal(ltxNames(db)[0], ltxName(257), 'files 1-256 removed');
    h.now += 50;
    tx(db, 2, 1);
    assert.equal(ltxNames(db)[0], ltxName(257), 'not yet');
    h.now += 50;
    tx(db, 3, 1);
    // The rest of the old ones; 301-303 were written after the files were aged.
    assert.deepEqual(ltxNames(db), [301, 302, 303].map(ltxName));
    // Done: the monitor interval applies again.
    ageOne(h, db, 301, 30 * MIN);
    h.now += 30_000;
    tx(db, 4, 1);
    assert.equal(ltxNames(db).length, 4, 'no sweep 30 s after the last');
  });
});
