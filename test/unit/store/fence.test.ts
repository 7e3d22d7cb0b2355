import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FENCE_LEAD_MS, WriteFence, fenceClock, fenceTimes, writesCommitFrame } from '../../../src/store/fence.js';
import { DatabaseLocks, Lock } from '../../../src/store/locks.js';

const PAGE = 4096;
const FRAME = 24 + PAGE;

/** A frame header (24 bytes) with the given commit field, optionally followed by its page. */
function frame(commit: number, withPage: boolean): Uint8Array {
  const buf = Buffer.alloc(withPage ? FRAME : 24);
  buf.writeUInt32BE(7, 0);
  buf.writeUInt32BE(commit, 4);
  buf.fill(0xab, 24);
  return buf;
}

describe('fence deadline arithmetic', () => {
  test('no deadline never fences', () => {
    assert.deepEqual(fenceTimes(null), { lockFenceAt: Infinity, commitDeadline: Infinity });
    const f = new WriteFence(() => 1e15);
    f.setDeadline(null);
    assert.equal(f.locksFenced(), false);
    assert.equal(f.commitsFenced(), false);
    assert.equal(f.hasDeadline, false);
  });

  test('locks stop FENCE_LEAD_MS before the deadline, commits at it', () => {
    assert.deepEqual(fenceTimes(10_000), { lockFenceAt: 10_000 - FENCE_LEAD_MS, commitDeadline: 10_000 });
    let now = 0;
    const f = new WriteFence(() => now);
    f.setDeadline(10_000);
    now = 10_000 - FENCE_LEAD_MS - 1;
    assert.equal(f.locksFenced(), false);
    now = 10_000 - FENCE_LEAD_MS;
    assert.equal(f.locksFenced(), true);
    assert.equal(f.commitsFenced(), false);
    now = 9_999;
    assert.equal(f.commitsFenced(), false);
    now = 10_000;
    assert.equal(f.commitsFenced(), true);
    f.setDeadline(null);
    assert.equal(f.locksFenced(), false);
    assert.equal(f.commitsFenced(), false);
  });

  test('the clock is on the performance time origin (comparable to Date.now)', () => {
    assert.ok(Math.abs(fenceClock() - Date.now()) < 60_000);
  });
});

describe('lock refusal by the lease deadline', () => {
  test('new RESERVED and WRITE grants are refused past the fence lead; held ones stay', () => {
    let now = 0;
    const fence = new WriteFence(() => now);
    const l = new DatabaseLocks(fence);
    fence.setDeadline(1_000);
    now = 1_000 - FENCE_LEAD_MS - 1;
    assert.ok(l.tryLock(1n, Lock.RESERVED));
    now = 1_000 - FENCE_LEAD_MS;
    // Another writer may not start.
    l.unlock(1n, Lock.RESERVED);
    assert.equal(l.tryLock(2n, Lock.RESERVED), false);
    // A WAL writer asks for WRITE inside its read transaction.
    assert.ok(l.tryRLock(2n, Lock.READ1));
    assert.equal(l.tryLock(2n, Lock.WRITE), false);
    assert.ok(l.fencedFor(2n, Lock.WRITE));
    // Readers and non-writer locks still work.
    assert.ok(l.tryRLock(2n, Lock.SHARED));
    assert.ok(l.tryLock(3n, Lock.CKPT));
    assert.equal(l.fencedFor(3n, Lock.CKPT), false);
    // An internal write set (recovery, apply) ignores the fence.
    l.releaseAll(2n);
    l.releaseAll(3n);
    assert.ok(l.tryAcquireWriteSet(-99n, 'wal'));
    l.releaseAll(-99n);
    assert.ok(l.tryRLock(2n, Lock.READ1));
    fence.setDeadline(null);
    assert.ok(l.tryLock(2n, Lock.WRITE));
  });

  test('an owner already holding WRITE keeps re-locking it', () => {
    let now = 0;
    const fence = new WriteFence(() => now);
    const l = new DatabaseLocks(fence);
    fence.setDeadline(1_000);
    assert.ok(l.tryLock(1n, Lock.WRITE));
    now = 5_000;
    assert.ok(l.tryLock(1n, Lock.WRITE));
    assert.equal(l.fencedFor(1n, Lock.WRITE), false);
  });
});

describe('commit frame detection', () => {
  test('a frame header alone, with or without a commit field', () => {
    assert.equal(writesCommitFrame(frame(0, false), 32, PAGE), false);
    assert.equal(writesCommitFrame(frame(3, false), 32, PAGE), true);
    assert.equal(writesCommitFrame(frame(3, false), 32 + 5 * FRAME, PAGE), true);
    assert.equal(writesCommitFrame(frame(0, false), 32 + 5 * FRAME, PAGE), false);
  });

  test('frame header and page in one write; several frames', () => {
    assert.equal(writesCommitFrame(frame(9, true), 32 + FRAME, PAGE), true);
    const two = Buffer.concat([frame(0, true), frame(0, true)]);
    assert.equal(writesCommitFrame(two, 32, PAGE), false);
    const last = Buffer.concat([frame(0, true), frame(2, true)]);
    assert.equal(writesCommitFrame(last, 32 + 2 * FRAME, PAGE), true);
  });

  test('page data and the WAL header are not frame headers', () => {
    // A page write whose bytes 4..8 are non-zero: offset 32 + 24 is inside a frame.
    const page = Buffer.alloc(PAGE, 0xff);
    assert.equal(writesCommitFrame(page, 32 + 24, PAGE), false);
    assert.equal(writesCommitFrame(page, 32 + FRAME + 24, PAGE), false);
    assert.equal(writesCommitFrame(Buffer.alloc(32, 0xff), 0, PAGE), false);
  });

  test('a partial header write that covers the commit field', () => {
    const tail = Buffer.alloc(20);
    tail.writeUInt32BE(1, 0);
    assert.equal(writesCommitFrame(tail, 32 + FRAME + 4, PAGE), true);
    assert.equal(writesCommitFrame(Buffer.alloc(20), 32 + FRAME + 4, PAGE), false);
  });
});
