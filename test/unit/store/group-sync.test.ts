import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SyncfsState, syncGroup } from '../../../src/store/group-sync.js';
import { CrashIO } from '../../../src/store/io-crash.js';
import type { GroupSyncJob } from '../../../src/store/messages.js';
import { Store } from '../../../src/store/store.js';
import { WalWriter, ltxNames, tx } from './store-fixture.js';

/** A store on CrashIO with one database, a.db, holding two rollback-mode transactions; removed afterwards. */
interface Setup {
  io: CrashIO;
  dataDir: string;
  store: Store;
  wal: WalWriter;
  open(): Store;
}

function withStore<T>(body: (s: Setup) => T): T {
  const base = mkdtempSync(join(tmpdir(), 'litefs-group-sync-'));
  try {
    const dataDir = join(base, 'data');
    const io = new CrashIO({ shadowDir: join(base, 'shadow') });
    const open = (): Store => {
      const store = new Store({ dataDir, compress: false, strictVerify: true, nodeId: 'n' }, () => {}, () => {}, io);
      store.open();
      return store;
    };
    const store = open();
    const db = store.createDB('a.db');
    tx(db, 1, 2);
    tx(db, 1, 2, [1], true);
    return body({ io, dataDir, store, wal: new WalWriter(db, 4242, false), open });
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

/**
 * Store.syncGroups (the `sync` command the main thread sends a second after
 * a transaction): WAL commits with synchronous=NORMAL leave their LTX files
 * and frames unsynced; after syncGroups a power loss keeps them all.
 * CrashIO drops every write not fsynced.
 */
describe('store: group sync on request', () => {
  function run(syncBeforePowerLoss: boolean, loseWAL = false): { txid: bigint; ltxFiles: number; forensic: boolean; checksumOK: boolean } {
    return withStore(({ io, dataDir, store, wal, open }) => {
      const db = store.db('a.db')!;
      wal.transaction(2, 2, [2]);
      wal.transaction(3, 3, [1, 3]);
      wal.transaction(4, 3, [2]);
      assert.equal(db.pos.txid, 5n);
      assert.equal(db.pendingLTX.length, 3);
      if (syncBeforePowerLoss) {
        store.syncGroups();
        assert.equal(db.pendingLTX.length, 0);
      }
      const pos = db.pos;
      io.simulatePowerLoss();
      // What a file system may also do: keep the LTX files but not the new WAL's folder entry.
      if (loseWAL) rmSync(db.walPath);
      const after = open().db('a.db')!;
      return {
        txid: after.pos.txid,
        ltxFiles: ltxNames(after).length,
        forensic: existsSync(join(dataDir, 'forensic')),
        checksumOK: after.pos.txid !== pos.txid || after.pos.postApplyChecksum === pos.postApplyChecksum,
      };
    });
  }

  test('after syncGroups a power loss keeps every WAL commit and its LTX file', () => {
    assert.deepEqual(run(true), { txid: 5n, ltxFiles: 5, forensic: false, checksumOK: true });
  });

  test('the LTX files survived but the WAL did not: they are applied to the database file, nothing lost or re-based', () => {
    assert.deepEqual(run(true, true), { txid: 5n, ltxFiles: 5, forensic: false, checksumOK: true });
  });

  test('without it, synchronous=NORMAL may lose the unsynced commits (the chain ends at the last durable one)', () => {
    const r = run(false);
    assert.equal(r.txid, 2n);
    assert.equal(r.ltxFiles, 2);
  });
});

/**
 * The once-a-second group sync runs off the FUSE thread: the FUSE thread
 * hands the waiting group over (DB.takeGroupSync), the syncer thread runs
 * syncGroup (here: in this thread, on the same CrashIO, which is what the
 * syncer's fsyncs do to the disk), and the report comes back
 * (DB.groupSyncDone). Until then the group still counts as waiting.
 */
describe('store: group sync on the syncer thread', () => {
  const syncer = new SyncfsState(() => {});
  const only = (jobs: GroupSyncJob[]): GroupSyncJob => {
    assert.equal(jobs.length, 1);
    return jobs[0]!;
  };

  test('a group synced by the syncer survives a power loss; the report empties it', () => {
    withStore(({ io, store, wal, open }) => {
      wal.transaction(2, 2, [2]);
      wal.transaction(3, 3, [1, 3]);
      const job = only(store.takeGroupSyncs());
      assert.equal(job.files.length, 2);
      assert.equal(job.databasePath, null, 'no replica applies wait');
      assert.deepEqual(store.takeGroupSyncs(), [], 'one group in flight at a time');
      syncGroup(io, job, syncer);
      assert.equal(store.groupSyncDone('a.db', job.gen, true), null);
      io.simulatePowerLoss();
      const after = open().db('a.db')!;
      assert.equal(after.pos.txid, 4n);
      assert.equal(ltxNames(after).length, 4);
    });
  });

  test('a sync on the FUSE thread while a group is in flight covers that group too; the late report changes nothing', () => {
    withStore(({ io, store, wal, open }) => {
      wal.transaction(2, 2, [2]);
      const job = only(store.takeGroupSyncs());
      wal.transaction(3, 3, [1, 3]);
      // What a checkpoint or unmount does: everything waiting, in flight or not.
      store.syncGroups();
      assert.equal(store.groupSyncDone('a.db', job.gen, false), null, 'a failure reported after that requeues nothing');
      assert.equal(store.db('a.db')!.pendingLTX.length, 0);
      io.simulatePowerLoss();
      assert.equal(open().db('a.db')!.pos.txid, 4n);
    });
  });

  test('a group that was handed over but not synced yet is lost to a power loss (synchronous=NORMAL allows it) and recovery ends at the last durable file', () => {
    withStore(({ io, store, wal, open }) => {
      wal.transaction(2, 2, [2]);
      only(store.takeGroupSyncs());
      io.simulatePowerLoss();
      const after = open().db('a.db')!;
      assert.equal(after.pos.txid, 2n);
      assert.equal(existsSync(join(after.dir, '..', '..', 'forensic')), false);
    });
  });

  test('a failed group waits again, oldest first, and goes with the next one', () => {
    withStore(({ store, wal }) => {
      wal.transaction(2, 2, [2]);
      const failed = only(store.takeGroupSyncs());
      wal.transaction(3, 3, [1, 3]);
      assert.equal(store.groupSyncDone('a.db', failed.gen, false), null);
      const db = store.db('a.db')!;
      assert.equal(db.pendingLTX.length, 2);
      const next = only(store.takeGroupSyncs());
      assert.deepEqual(next.files, [...failed.files, db.ltxDir + '/' + ltxNames(db).at(-1)!]);
    });
  });

  test('a sync that found a group in flight gets its own job when that one is reported', () => {
    withStore(({ io, store, wal }) => {
      wal.transaction(2, 2, [2]);
      const first = only(store.takeGroupSyncs());
      wal.transaction(3, 3, [1, 3]);
      assert.deepEqual(store.takeGroupSyncs(), []);
      syncGroup(io, first, syncer);
      const next = store.groupSyncDone('a.db', first.gen, true);
      assert.ok(next !== null);
      assert.equal(next.files.length, 1);
      assert.equal(store.groupSyncDone('a.db', first.gen, true), null, 'a report is used once');
    });
  });

  test('files removed before the syncer reached them (retention) are skipped', () => {
    withStore(({ io, store, wal }) => {
      wal.transaction(2, 2, [2]);
      const job = only(store.takeGroupSyncs());
      rmSync(job.files[0]!);
      syncGroup(io, job, syncer);
      assert.equal(store.groupSyncDone('a.db', job.gen, true), null);
    });
  });
});
