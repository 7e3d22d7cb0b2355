import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  databaseLocksInRange,
  DbLock,
  HALT_BYTE,
  PENDING_BYTE,
  RESERVED_BYTE,
  SHARED_FIRST,
  SHARED_SIZE,
  shmLocksInRange,
  ShmLock,
  shmReadLock,
} from '../../../src/sqlite/locks.js';

const EOF_END = Number.MAX_SAFE_INTEGER;

describe('database lock bytes', () => {
  test('constants match the unix VFS', () => {
    assert.equal(PENDING_BYTE, 0x40000000);
    assert.equal(RESERVED_BYTE, 0x40000001);
    assert.equal(SHARED_FIRST, 0x40000002);
    assert.equal(SHARED_SIZE, 510);
    assert.equal(HALT_BYTE, 72);
  });

  test('maps the ranges SQLite locks to lock types', () => {
    assert.equal(databaseLocksInRange(PENDING_BYTE, PENDING_BYTE), DbLock.PENDING);
    assert.equal(databaseLocksInRange(RESERVED_BYTE, RESERVED_BYTE), DbLock.RESERVED);
    assert.equal(databaseLocksInRange(SHARED_FIRST, SHARED_FIRST + SHARED_SIZE - 1), DbLock.SHARED);
    // Back to SHARED unlocks PENDING and RESERVED together (offset 0x40000000, length 2).
    assert.equal(databaseLocksInRange(PENDING_BYTE, PENDING_BYTE + 1), DbLock.PENDING | DbLock.RESERVED);
    // Unlock to NONE: offset 0, length 0 = the whole file.
    assert.equal(databaseLocksInRange(0, EOF_END), DbLock.PENDING | DbLock.RESERVED | DbLock.SHARED);
  });

  test('a lock counts only if its first byte is in the range; HALT is never a database lock', () => {
    assert.equal(databaseLocksInRange(SHARED_FIRST + 1, SHARED_FIRST + 100), 0);
    assert.equal(databaseLocksInRange(HALT_BYTE, HALT_BYTE), 0);
    assert.equal(databaseLocksInRange(0, PENDING_BYTE - 1), 0);
    assert.equal(databaseLocksInRange(RESERVED_BYTE, EOF_END), DbLock.RESERVED | DbLock.SHARED);
  });
});

describe('shm lock bytes', () => {
  test('each byte 120..128 maps to its lock', () => {
    const expected = [ShmLock.WRITE, ShmLock.CKPT, ShmLock.RECOVER, ShmLock.READ0, ShmLock.READ1, ShmLock.READ2, ShmLock.READ3, ShmLock.READ4, ShmLock.DMS];
    for (let i = 0; i < expected.length; i++) assert.equal(shmLocksInRange(120 + i, 120 + i), expected[i]);
    for (let i = 0; i < 5; i++) assert.equal(shmReadLock(i), expected[3 + i]);
  });

  test('ranges cover every lock inside them and nothing outside', () => {
    assert.equal(shmLocksInRange(121, 122), ShmLock.CKPT | ShmLock.RECOVER);
    assert.equal(shmLocksInRange(123, 127), ShmLock.READ0 | ShmLock.READ1 | ShmLock.READ2 | ShmLock.READ3 | ShmLock.READ4);
    assert.equal(shmLocksInRange(0, EOF_END), 0x1ff);
    assert.equal(shmLocksInRange(0, 119), 0);
    assert.equal(shmLocksInRange(129, EOF_END), 0);
    assert.equal(shmLocksInRange(125, 124), 0);
  });
});
