import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { HaltGuards } from '../../../src/fs/halt-guards.js';
import { Lock } from '../../../src/store/locks.js';
import type { StoreCommandResult } from '../../../src/store/messages.js';
import type { Store } from '../../../src/store/store.js';
import { buildJournalHeader } from '../../../src/sqlite/index.js';
import { type Harness, PAGE, harness, tx } from '../store/store-fixture.js';

/** The primary's HALT lock sets on the FUSE thread (src/fs/halt-guards.ts), on a real store without a mount. */
describe('HaltGuards', () => {
  let h: Harness;
  let store: Store;
  let now: number;
  let released: string[];
  let guards: HaltGuards;

  beforeEach(() => {
    h = harness();
    store = h.open();
    now = 1000;
    released = [];
    guards = new HaltGuards(store, (db) => released.push(db.name), () => now);
  });
  afterEach(() => rmSync(h.base, { recursive: true, force: true }));

  const lock = (lockID: string, id = 1): StoreCommandResult => guards.lock({ type: 'haltLock', id, db: 'a.db', lockID });

  test('the lock set is taken for one lock id at a time, answers the position, and goes on unlock', () => {
    const db = store.createDB('a.db');
    tx(db, 1, 2);
    const r = lock('7');
    assert.ok(r.status === 'ok' && r.pos !== undefined);
    assert.equal(r.pos.txid, '0000000000000001');
    assert.equal(lock('7').status, 'ok', 'the same id again: a retried request');
    assert.equal(lock('8').status, 'busy', "another replica's lock waits");
    assert.ok(guards.ownerOf('a.db', 7n) !== undefined);
    assert.equal(guards.ownerOf('a.db', 8n), undefined);
    assert.equal(db.locks.tryRLock(99n, Lock.SHARED), false, 'local SQLite clients wait, readers too');
    guards.unlock({ type: 'haltUnlock', id: 2, db: 'a.db', lockID: '8' });
    assert.deepEqual(released, [], 'another id releases nothing');
    guards.unlock({ type: 'haltUnlock', id: 3, db: 'a.db', lockID: '7' });
    assert.deepEqual(released, ['a.db']);
    assert.ok(db.locks.tryRLock(99n, Lock.SHARED));
  });

  test('busy while a SQLite transaction holds locks: the set counts as wanted for 100 ms after each try, not after success', () => {
    const db = store.createDB('a.db');
    tx(db, 1, 2);
    assert.ok(db.locks.tryRLock(5n, Lock.SHARED), 'a reader in a transaction');
    assert.equal(guards.wants('a.db'), false);
    assert.equal(lock('7').status, 'busy');
    assert.equal(guards.wants('a.db'), true);
    now += 99;
    assert.equal(guards.wants('a.db'), true);
    now += 1;
    assert.equal(guards.wants('a.db'), false, 'the main thread stopped asking');
    assert.equal(lock('7').status, 'busy');
    db.locks.releaseAll(5n);
    assert.equal(lock('7').status, 'ok');
    assert.equal(guards.wants('a.db'), false);
  });

  test('a hot journal left by a killed client refuses the lock; releaseAll ends every lock (the node stepped down)', () => {
    const db = store.createDB('a.db');
    tx(db, 1, 2);
    writeFileSync(db.journalPath, buildJournalHeader({ nRec: 0, nonce: 1, initialPageCount: 2, sectorSize: 512, pageSize: PAGE, hasMagic: true }));
    const refused = lock('7');
    assert.ok(refused.status === 'error' && /hot journal/.test(refused.message), JSON.stringify(refused));
    assert.ok(db.locks.tryRLock(99n, Lock.SHARED), 'nothing stays held');
    db.locks.releaseAll(99n);
    rmSync(db.journalPath);
    guards.lock({ type: 'haltLock', id: 1, db: 'b.db', lockID: '9' });
    assert.equal(lock('7').status, 'ok');
    guards.releaseAll();
    assert.deepEqual(released.sort(), ['a.db', 'b.db']);
  });
});
