import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupSyncTimer } from '../../../src/node/group-sync-timer.js';
import { ManualTimers } from './manual-timers.js';

describe('GroupSyncTimer', () => {
  test('one sync a delay after the first transaction, however many follow; the next transaction arms it again', () => {
    const timers = new ManualTimers();
    let sent = 0;
    const t = new GroupSyncTimer(() => sent++, 1000, timers);
    t.onTx();
    t.onTx();
    t.onTx();
    assert.equal(timers.armed, 1);
    assert.equal(timers.pending?.ms, 1000);
    timers.fire();
    assert.equal(sent, 1);
    t.onTx();
    assert.equal(timers.armed, 2);
    timers.fire();
    assert.equal(sent, 2);
  });

  test('close() cancels a pending sync and ignores later transactions', () => {
    const timers = new ManualTimers();
    let sent = 0;
    const t = new GroupSyncTimer(() => sent++, 1000, timers);
    t.onTx();
    t.close();
    assert.equal(timers.pending, null);
    t.onTx();
    assert.equal(timers.armed, 1);
    assert.equal(sent, 0);
  });
});
