import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { HOLD_WAIT_MS, ImageHolds } from '../../../src/fs/image-holds.js';
import { Lock } from '../../../src/store/locks.js';
import type { StoreCommandResult } from '../../../src/store/messages.js';
import type { Store } from '../../../src/store/store.js';
import { type Harness, PAGE, WalWriter, harness, tx } from '../store/store-fixture.js';

/** Read lock sets held for snapshot and export copies (src/fs/image-holds.ts), on a real store without a mount. */
describe('ImageHolds', () => {
  let h: Harness;
  let store: Store;
  let now: number;
  let answers: StoreCommandResult[];
  let released: string[];
  let holds: ImageHolds;

  beforeEach(() => {
    h = harness();
    store = h.open();
    now = 1000;
    answers = [];
    released = [];
    holds = new ImageHolds(store, (r) => answers.push(r), (db) => released.push(db.name), () => now);
  });
  afterEach(() => rmSync(h.base, { recursive: true, force: true }));

  const hold = (holdID: number, db = 'a.db'): void => holds.request({ type: 'imageHold', id: holdID, db, holdID });
  const release = (holdID: number, db = 'a.db'): void => holds.release({ type: 'imageRelease', db, holdID });

  test('rollback mode: held at once with the position and size; readers go on, a writer cannot commit until the release', () => {
    const db = store.createDB('a.db');
    tx(db, 1, 3);
    hold(1);
    const [r] = answers;
    assert.ok(r?.status === 'ok' && r.image !== undefined, JSON.stringify(r));
    assert.deepEqual({ ...r.image, walFrames: [...r.image.walFrames] }, {
      txid: '0000000000000001',
      checksum: r.image.checksum,
      pageSize: PAGE,
      pageCount: 3,
      walFrames: [],
    });
    assert.equal(BigInt('0x' + r.image.checksum), db.pos.postApplyChecksum);
    assert.ok(db.locks.tryRLock(5n, Lock.SHARED), 'a reader');
    assert.ok(db.locks.tryLock(6n, Lock.RESERVED), 'a writer may start its journal');
    assert.equal(db.locks.tryLock(6n, Lock.SHARED), false, 'but not take EXCLUSIVE');
    assert.equal(holds.parks(db, 6n, Lock.SHARED, true), true, 'its EXCLUSIVE request waits for the release');
    assert.equal(holds.parks(db, 6n, Lock.SHARED, false), false, 'shared requests are never parked');
    assert.equal(holds.parks(db, 6n, Lock.PENDING, true), false, 'nor is PENDING, which the hold does not refuse');
    release(1);
    assert.equal(holds.parks(db, 6n, Lock.SHARED, true), false, 'no hold, no parking');
    assert.deepEqual(released, ['a.db']);
    db.locks.releaseAll(5n);
    assert.ok(db.locks.tryLock(6n, Lock.SHARED), 'EXCLUSIVE once released');
    assert.equal(holds.count, 0);
  });

  test('waits while a writer holds EXCLUSIVE; granted after the request that ends it, busy after HOLD_WAIT_MS', () => {
    const db = store.createDB('a.db');
    tx(db, 1, 2);
    assert.ok(db.locks.tryLock(6n, Lock.RESERVED | Lock.PENDING | Lock.SHARED));
    hold(1);
    holds.poll();
    assert.equal(answers.length, 0, 'waiting');
    db.locks.releaseAll(6n);
    holds.poll();
    assert.equal(answers[0]?.status, 'ok');

    assert.ok(db.locks.tryLock(7n, Lock.RESERVED) && !db.locks.tryLock(7n, Lock.SHARED));
    release(1);
    assert.ok(db.locks.tryLock(7n, Lock.SHARED));
    hold(2);
    now += HOLD_WAIT_MS - 1;
    holds.poll();
    assert.equal(answers.length, 1);
    now += 1;
    holds.poll();
    assert.deepEqual(answers[1], { type: 'commandResult', id: 2, status: 'busy' });
    assert.equal(holds.count, 0);
  });

  test('WAL mode: only at a commit boundary (WAL WRITE free); the committed frames are named; checkpoints cannot move read marks', () => {
    const db = store.createDB('w.db');
    tx(db, 1, 2, undefined, true);
    const w = new WalWriter(db);
    w.transaction(2, 3, [2, 3]);
    w.transaction(3, 3, [3]);
    assert.ok(db.locks.tryLock(9n, Lock.WRITE), 'a writer in its transaction');
    hold(1, 'w.db');
    holds.poll();
    assert.equal(answers.length, 0);
    db.locks.unlock(9n, Lock.WRITE);
    holds.poll();
    const [r] = answers;
    assert.ok(r?.status === 'ok' && r.image !== undefined);
    assert.equal(r.image.txid, '0000000000000003');
    assert.equal(r.image.pageCount, 3);
    assert.deepEqual([...r.image.walFrames].sort((a, b) => a[0] - b[0]), [
      [2, 32],
      [3, 32 + 2 * (24 + PAGE)],
    ]);
    assert.ok(db.locks.tryLock(9n, Lock.WRITE), 'writers go on in WAL mode');
    db.locks.unlock(9n, Lock.WRITE);
    assert.equal(holds.parks(db, 10n, Lock.SHARED, true), false, 'WAL mode parks nothing: SQLite retries or falls back');
    assert.equal(db.locks.tryLock(10n, Lock.READ1), false, 'a checkpointer cannot bump a read mark');
    assert.equal(db.locks.tryLock(10n, Lock.SHARED), false, 'nobody leaves WAL mode (EXCLUSIVE on the database)');
    release(1, 'w.db');
    assert.ok(db.locks.tryLock(10n, Lock.READ1));
  });

  test('writers parked behind two holds are answered when the last one is released', () => {
    const db = store.createDB('a.db');
    tx(db, 1, 2);
    hold(1);
    hold(2);
    assert.equal(holds.count, 2);
    assert.ok(db.locks.tryLock(6n, Lock.RESERVED | Lock.PENDING));
    assert.equal(holds.parks(db, 6n, Lock.SHARED, true), true);
    release(1);
    assert.deepEqual(released, [], 'the other hold still refuses EXCLUSIVE: nothing is decided yet');
    assert.equal(holds.parks(db, 6n, Lock.SHARED, true), true);
    release(2);
    assert.deepEqual(released, ['a.db']);
    assert.ok(db.locks.tryLock(6n, Lock.SHARED));
  });

  test('a release of a request still waiting answers it busy (the main thread gave up); nothing stays held', () => {
    const db = store.createDB('a.db');
    tx(db, 1, 2);
    assert.ok(db.locks.tryLock(6n, Lock.PENDING));
    hold(4);
    release(4);
    assert.deepEqual(answers, [{ type: 'commandResult', id: 4, status: 'busy' }]);
    db.locks.releaseAll(6n);
    holds.poll();
    assert.equal(answers.length, 1);
    assert.equal(holds.count, 0);
  });

  test('an unknown database and pages written outside a transaction (a killed client) are errors', () => {
    hold(1, 'nope.db');
    assert.ok(answers[0]?.status === 'error' && /not found/.test(answers[0].message));
    const db = store.createDB('a.db');
    tx(db, 1, 2);
    db.dirty.add(2);
    hold(2);
    assert.ok(answers[1]?.status === 'error' && /hot journal/.test(answers[1].message), JSON.stringify(answers[1]));
    assert.ok(db.locks.tryLock(99n, Lock.SHARED), 'nothing stays held');
  });
});
