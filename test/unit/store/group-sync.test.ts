import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrashIO } from '../../../src/store/io-crash.js';
import { Store } from '../../../src/store/store.js';
import { WalWriter, ltxNames, tx } from './store-fixture.js';

/**
 * Store.syncGroups (the `sync` command the main thread sends a second after
 * a transaction): WAL commits with synchronous=NORMAL leave their LTX files
 * and frames unsynced; after syncGroups a power loss keeps them all.
 * CrashIO drops every write not fsynced.
 */
describe('store: group sync on request', () => {
  function run(syncBeforePowerLoss: boolean, loseWAL = false): { txid: bigint; ltxFiles: number; forensic: boolean; checksumOK: boolean } {
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
      const wal = new WalWriter(db, 4242, false);
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
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
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
