import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TxEventPacer } from '../../../src/node/tx-event-pacer.js';
import type { StoreCommand } from '../../../src/store/messages.js';
import { ManualTimers } from './manual-timers.js';

function harness(wants: { every: boolean }): { pacer: TxEventPacer; told: string[]; timers: ManualTimers } {
  const told: string[] = [];
  const timers = new ManualTimers();
  const describe = (c: StoreCommand): string => (c.type === 'txEvents' ? `txEvents ${c.prompt}` : c.type);
  const pacer = new TxEventPacer({ wantsEveryTx: () => wants.every, tell: (c) => told.push(describe(c)), windowMs: 50, timers });
  return { pacer, told, timers };
}

describe('TxEventPacer', () => {
  test('a node that needs no commit at once switches to windows at its first commit and closes each window after windowMs', () => {
    const wants = { every: false };
    const { pacer, told, timers } = harness(wants);
    pacer.onTx();
    assert.deepEqual(told, ['txEvents false']);
    assert.equal(timers.pending?.ms, 50);
    pacer.onTx();
    assert.equal(timers.armed, 1);
    timers.fire();
    assert.deepEqual(told, ['txEvents false', 'flushTx']);
    // The flushed commits arrive: one more window, then nothing until the next commit.
    pacer.onTx();
    assert.equal(timers.armed, 2);
    timers.fire();
    assert.deepEqual(told, ['txEvents false', 'flushTx', 'flushTx']);
    assert.equal(timers.pending, null);
  });

  test('while something needs every commit, nothing is held and no timer runs; when that changes the FUSE thread is told', () => {
    const wants = { every: true };
    const { pacer, told, timers } = harness(wants);
    pacer.onTx();
    pacer.onTx();
    assert.deepEqual(told, []);
    assert.equal(timers.armed, 0);
    wants.every = false;
    pacer.onTx();
    assert.deepEqual(told, ['txEvents false']);
    wants.every = true;
    timers.fire();
    // The pending flush still goes, then prompt again.
    assert.deepEqual(told, ['txEvents false', 'flushTx', 'txEvents true']);
    pacer.check();
    assert.deepEqual(told, ['txEvents false', 'flushTx', 'txEvents true']);
  });

  test('close() cancels the pending flush and ignores what comes later', () => {
    const wants = { every: false };
    const { pacer, told, timers } = harness(wants);
    pacer.onTx();
    pacer.close();
    assert.equal(timers.pending, null);
    pacer.onTx();
    pacer.check();
    assert.deepEqual(told, ['txEvents false']);
  });
});
