import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { F_RDLCK, F_UNLCK, F_WRLCK, LockTable, type LockInfo } from '../../../src/fuse/lock-table.js';

const A = 1n;
const B = 2n;
const C = 3n;

function ranges(t: LockTable): string[] {
  return t.snapshot().map((l) => `${l.owner}:${l.type === F_RDLCK ? 'R' : 'W'}[${l.start},${l.end}]`);
}

describe('LockTable ranges of one owner', () => {
  test('unlocking the middle of a write lock splits it in two', () => {
    const t = new LockTable();
    assert.equal(t.trySet(A, 10, F_WRLCK, 0, 100), true);
    assert.equal(t.trySet(A, 10, F_UNLCK, 40, 59), true);
    assert.deepEqual(ranges(t), ['1:W[0,39]', '1:W[60,100]']);
  });

  test('adjacent and overlapping ranges of the same type merge', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_RDLCK, 0, 9);
    t.trySet(A, 10, F_RDLCK, 20, 29);
    t.trySet(A, 10, F_RDLCK, 10, 19);
    assert.deepEqual(ranges(t), ['1:R[0,29]']);
    t.trySet(A, 10, F_RDLCK, 25, 40);
    assert.deepEqual(ranges(t), ['1:R[0,40]']);
  });

  test('ranges of different types touch without merging', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_RDLCK, 0, 9);
    t.trySet(A, 10, F_WRLCK, 10, 19);
    assert.deepEqual(ranges(t), ['1:R[0,9]', '1:W[10,19]']);
  });

  test('upgrading part of a read lock to write splits the read lock', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_RDLCK, 0, 99);
    assert.equal(t.trySet(A, 10, F_WRLCK, 30, 49), true);
    assert.deepEqual(ranges(t), ['1:R[0,29]', '1:W[30,49]', '1:R[50,99]']);
  });

  test('downgrading back to read merges the pieces again', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_RDLCK, 0, 99);
    t.trySet(A, 10, F_WRLCK, 30, 49);
    t.trySet(A, 10, F_RDLCK, 30, 49);
    assert.deepEqual(ranges(t), ['1:R[0,99]']);
  });

  test('a lock to EOF (Infinity) is cut by a later unlock of a finite range', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_WRLCK, 5, Infinity);
    t.trySet(A, 10, F_UNLCK, 10, 19);
    assert.deepEqual(ranges(t), ['1:W[5,9]', '1:W[20,Infinity]']);
    t.trySet(A, 10, F_UNLCK, 0, Infinity);
    assert.equal(t.isEmpty(), true);
  });

  test('unlocking bytes that are not locked succeeds and changes nothing', () => {
    const t = new LockTable();
    assert.equal(t.trySet(A, 10, F_UNLCK, 0, 10), true);
    t.trySet(A, 10, F_WRLCK, 100, 110);
    assert.equal(t.trySet(A, 10, F_UNLCK, 0, 10), true);
    assert.equal(t.trySet(B, 20, F_UNLCK, 100, 110), true);
    assert.deepEqual(ranges(t), ['1:W[100,110]']);
  });

  test('an owner never conflicts with itself', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_WRLCK, 0, 10);
    assert.equal(t.test(A, F_WRLCK, 0, 10), null);
    assert.equal(t.trySet(A, 10, F_WRLCK, 5, 20), true);
    assert.deepEqual(ranges(t), ['1:W[0,20]']);
  });

  test('invalid ranges are refused with RangeError', () => {
    const t = new LockTable();
    assert.throws(() => t.trySet(A, 1, F_WRLCK, 10, 9), RangeError);
    assert.throws(() => t.test(A, F_WRLCK, -1, 9), RangeError);
  });
});

describe('LockTable conflicts between owners', () => {
  test('read locks of different owners share', () => {
    const t = new LockTable();
    assert.equal(t.trySet(A, 10, F_RDLCK, 0, 10), true);
    assert.equal(t.trySet(B, 20, F_RDLCK, 5, 15), true);
    assert.deepEqual(ranges(t), ['1:R[0,10]', '2:R[5,15]']);
  });

  test('a write lock conflicts with another owner’s read or write lock', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_RDLCK, 0, 10);
    assert.equal(t.trySet(B, 20, F_WRLCK, 10, 20), false);
    assert.equal(t.trySet(B, 20, F_WRLCK, 11, 20), true);
    assert.equal(t.trySet(C, 30, F_RDLCK, 20, 20), false);
    assert.equal(t.trySet(C, 30, F_WRLCK, 15, 15), false);
  });

  test('upgrade to write fails while another owner shares the read lock', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_RDLCK, 0, 10);
    t.trySet(B, 20, F_RDLCK, 0, 10);
    assert.equal(t.trySet(A, 10, F_WRLCK, 0, 10), false);
    assert.deepEqual(ranges(t), ['1:R[0,10]', '2:R[0,10]'], 'a failed upgrade keeps the read lock');
    t.trySet(B, 20, F_UNLCK, 0, Infinity);
    assert.equal(t.trySet(A, 10, F_WRLCK, 0, 10), true);
  });

  test('F_GETLK answers with the first conflicting lock, its owner and pid', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_RDLCK, 50, 59);
    t.trySet(B, 20, F_WRLCK, 10, 19);
    t.trySet(C, 30, F_RDLCK, 0, 5);
    assert.deepEqual(t.test(C, F_WRLCK, 0, 100), { owner: B, pid: 20, type: F_WRLCK, start: 10, end: 19 });
    assert.deepEqual(t.test(A, F_RDLCK, 0, 100), { owner: B, pid: 20, type: F_WRLCK, start: 10, end: 19 });
    assert.deepEqual(t.test(B, F_WRLCK, 0, 100), { owner: C, pid: 30, type: F_RDLCK, start: 0, end: 5 });
    assert.equal(t.test(C, F_RDLCK, 50, 59), null, 'read does not conflict with read');
    assert.equal(t.test(C, F_WRLCK, 20, 49), null, 'gap between locks is free');
  });

  test('F_GETLK returns a copy the caller cannot use to corrupt the table', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_WRLCK, 0, 9);
    const got = t.test(B, F_WRLCK, 0, 0) as LockInfo;
    got.end = 1000;
    assert.deepEqual(ranges(t), ['1:W[0,9]']);
  });

  test('releaseOwner drops every lock of that owner only', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_RDLCK, 0, 9);
    t.trySet(A, 10, F_WRLCK, 20, 29);
    t.trySet(B, 20, F_RDLCK, 0, 9);
    t.releaseOwner(A);
    assert.deepEqual(ranges(t), ['2:R[0,9]']);
    t.releaseOwner(A);
    t.releaseOwner(B);
    assert.equal(t.isEmpty(), true);
  });
});

describe('LockTable waiters (F_SETLKW)', () => {
  test('a waiter is queued on conflict and granted when the holder unlocks', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_WRLCK, 0, 9);
    assert.equal(t.setOrWait(B, 20, F_WRLCK, 5, 5, 100n), false);
    assert.deepEqual(t.takeGranted(), []);
    assert.equal(t.isEmpty(), false);
    t.trySet(A, 10, F_UNLCK, 0, 4);
    assert.deepEqual(t.takeGranted(), [], 'byte 5 is still held');
    t.trySet(A, 10, F_UNLCK, 5, 9);
    assert.deepEqual(t.takeGranted(), [100n]);
    assert.deepEqual(t.takeGranted(), [], 'each grant is reported once');
    assert.deepEqual(ranges(t), ['2:W[5,5]']);
  });

  test('a waiter with no conflict is granted at once', () => {
    const t = new LockTable();
    assert.equal(t.setOrWait(A, 10, F_WRLCK, 0, 9, 1n), true);
    assert.deepEqual(t.takeGranted(), []);
    assert.deepEqual(ranges(t), ['1:W[0,9]']);
  });

  test('waiters are granted in FIFO order; later conflicting ones keep waiting', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_WRLCK, 0, 9);
    t.setOrWait(B, 20, F_WRLCK, 0, 9, 1n);
    t.setOrWait(C, 30, F_WRLCK, 0, 9, 2n);
    t.releaseOwner(A);
    assert.deepEqual(t.takeGranted(), [1n]);
    assert.deepEqual(ranges(t), ['2:W[0,9]']);
    t.releaseOwner(B);
    assert.deepEqual(t.takeGranted(), [2n]);
    assert.deepEqual(ranges(t), ['3:W[0,9]']);
  });

  test('several compatible readers are granted together', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_WRLCK, 0, 9);
    t.setOrWait(B, 20, F_RDLCK, 0, 9, 1n);
    t.setOrWait(C, 30, F_RDLCK, 0, 9, 2n);
    t.trySet(A, 10, F_UNLCK, 0, 9);
    assert.deepEqual(t.takeGranted(), [1n, 2n]);
  });

  test('a downgrade from write to read admits waiting readers', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_WRLCK, 0, 9);
    t.setOrWait(B, 20, F_RDLCK, 0, 9, 7n);
    t.trySet(A, 10, F_RDLCK, 0, 9);
    assert.deepEqual(t.takeGranted(), [7n]);
  });

  test('cancelWait removes a queued waiter once; it is never granted', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_WRLCK, 0, 9);
    t.setOrWait(B, 20, F_WRLCK, 0, 9, 5n);
    assert.equal(t.cancelWait(5n), true);
    assert.equal(t.cancelWait(5n), false);
    t.releaseOwner(A);
    assert.deepEqual(t.takeGranted(), []);
    assert.equal(t.isEmpty(), true);
  });

  test('cancelWait of a granted or unknown request returns false', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_WRLCK, 0, 9);
    t.setOrWait(B, 20, F_WRLCK, 0, 9, 5n);
    t.releaseOwner(A);
    assert.equal(t.cancelWait(5n), false);
    assert.equal(t.cancelWait(99n), false);
    assert.deepEqual(t.takeGranted(), [5n]);
  });

  test('releaseOwner keeps the owner’s own queued waits', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_WRLCK, 0, 9);
    t.trySet(B, 20, F_RDLCK, 20, 29);
    t.setOrWait(B, 20, F_WRLCK, 0, 9, 3n);
    t.releaseOwner(B);
    assert.equal(t.waiting(), 1);
    t.releaseOwner(A);
    assert.deepEqual(t.takeGranted(), [3n]);
    assert.deepEqual(ranges(t), ['2:W[0,9]']);
  });
});

/**
 * Brute-force model: for every byte 0..63 (and index 64 standing for
 * 64..Infinity) and every owner, the type held or undefined. Waiters follow
 * the same FIFO rescan rule the table documents.
 */
class ByteModel {
  static readonly N = 65;
  held = new Map<bigint, (0 | 1 | undefined)[]>();
  waiters: { waitId: bigint; owner: bigint; type: 0 | 1; s: number; e: number }[] = [];
  granted: bigint[] = [];

  private bytes(owner: bigint): (0 | 1 | undefined)[] {
    let b = this.held.get(owner);
    if (b === undefined) {
      b = new Array<0 | 1 | undefined>(ByteModel.N).fill(undefined);
      this.held.set(owner, b);
    }
    return b;
  }

  conflicts(owner: bigint, type: 0 | 1, s: number, e: number): boolean {
    for (const [o, b] of this.held) {
      if (o === owner) continue;
      for (let i = s; i <= e; i++) {
        const t = b[i];
        if (t !== undefined && (type === F_WRLCK || t === F_WRLCK)) return true;
      }
    }
    return false;
  }

  set(owner: bigint, type: 0 | 1 | 2, s: number, e: number): void {
    const b = this.bytes(owner);
    for (let i = s; i <= e; i++) b[i] = type === F_UNLCK ? undefined : type;
  }

  grant(): void {
    for (let i = 0; i < this.waiters.length; ) {
      const w = this.waiters[i];
      if (this.conflicts(w.owner, w.type, w.s, w.e)) {
        i++;
        continue;
      }
      this.waiters.splice(i, 1);
      this.set(w.owner, w.type, w.s, w.e);
      this.granted.push(w.waitId);
      i = 0;
    }
  }

  /** Ranges in the table's representation, sorted like snapshot(). */
  ranges(pidOf: (o: bigint) => number): LockInfo[] {
    const out: LockInfo[] = [];
    for (const [owner, b] of this.held) {
      let i = 0;
      while (i < ByteModel.N) {
        const t = b[i];
        if (t === undefined) {
          i++;
          continue;
        }
        let j = i;
        while (j + 1 < ByteModel.N && b[j + 1] === t) j++;
        out.push({ owner, pid: pidOf(owner), type: t, start: i, end: j === ByteModel.N - 1 ? Infinity : j });
        i = j + 1;
      }
    }
    return out.sort((x, y) => x.start - y.start || Number(x.owner - y.owner));
  }
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('LockTable against a byte-map model', () => {
  for (const seed of [1, 2, 3, 42, 1234]) {
    test(`random operations agree with the model (seed ${seed}, 5000 ops)`, () => {
      const rnd = mulberry32(seed);
      const int = (n: number): number => Math.floor(rnd() * n);
      const pidOf = (o: bigint): number => Number(o) * 100;
      const t = new LockTable();
      const m = new ByteModel();
      let nextWait = 1n;
      const queued: bigint[] = [];
      const seen = { refused: 0, granted: 0, cancelled: 0, answered: 0 };
      for (let op = 0; op < 5000; op++) {
        const owner = BigInt(1 + int(4));
        const s = int(64);
        const infinite = int(8) === 0;
        const e = infinite ? Infinity : Math.min(63, s + int(int(2) === 0 ? 4 : 64));
        const me = infinite ? 64 : e;
        const type = int(2) as 0 | 1;
        const where = `seed ${seed} op ${op}`;
        switch (int(7)) {
          case 0:
          case 1: {
            const ok = t.trySet(owner, pidOf(owner), type, s, e);
            const expect = !m.conflicts(owner, type, s, me);
            assert.equal(ok, expect, `${where}: trySet`);
            if (!ok) seen.refused++;
            if (expect) m.set(owner, type, s, me);
            break;
          }
          case 2: {
            t.trySet(owner, pidOf(owner), F_UNLCK, s, e);
            m.set(owner, F_UNLCK, s, me);
            break;
          }
          case 3: {
            const got = t.test(owner, type, s, e);
            assert.equal(got !== null, m.conflicts(owner, type, s, me), `${where}: test`);
            if (got !== null) {
              const snap = t.snapshot();
              const conflicting = snap.filter(
                (l) => l.owner !== owner && l.start <= e && l.end >= s && (type === F_WRLCK || l.type === F_WRLCK),
              );
              assert.deepEqual(got, conflicting[0], `${where}: test answers the first conflict`);
              seen.answered++;
            }
            break;
          }
          case 4: {
            if (m.waiters.length >= 6) break;
            const id = nextWait++;
            const now = t.setOrWait(owner, pidOf(owner), type, s, e, id);
            const expect = !m.conflicts(owner, type, s, me);
            assert.equal(now, expect, `${where}: setOrWait`);
            if (expect) m.set(owner, type, s, me);
            else {
              m.waiters.push({ waitId: id, owner, type, s, e: me });
              queued.push(id);
            }
            break;
          }
          case 5: {
            if (queued.length === 0) break;
            // Half the time a request still queued, else any (maybe granted) one.
            const id =
              m.waiters.length > 0 && int(2) === 0 ? m.waiters[int(m.waiters.length)].waitId : queued[int(queued.length)];
            const i = m.waiters.findIndex((w) => w.waitId === id);
            assert.equal(t.cancelWait(id), i >= 0, `${where}: cancelWait`);
            if (i >= 0) {
              m.waiters.splice(i, 1);
              seen.cancelled++;
            }
            break;
          }
          case 6: {
            if (int(4) !== 0) break;
            t.releaseOwner(owner);
            m.held.delete(owner);
            break;
          }
        }
        m.grant();
        assert.deepEqual(t.takeGranted(), m.granted, `${where}: granted waiters`);
        seen.granted += m.granted.length;
        m.granted = [];
        assert.deepEqual(t.snapshot(), m.ranges(pidOf), `${where}: held ranges`);
      }
      // The walk must actually reach every interesting path, or it proves little.
      for (const [what, n] of Object.entries(seen)) assert.ok(n >= 20, `seed ${seed}: only ${n} ${what}`);
    });
  }
});

describe('LockTable deadlock detection (EDEADLK)', () => {
  test('two owners each waiting for the other’s range is a deadlock', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_WRLCK, 0, 0);
    t.trySet(B, 20, F_WRLCK, 1, 1);
    assert.equal(t.wouldDeadlock(A, F_WRLCK, 1, 1), false, 'B is not waiting yet');
    assert.equal(t.setOrWait(A, 10, F_WRLCK, 1, 1, 1n), false);
    assert.equal(t.wouldDeadlock(B, F_WRLCK, 0, 0), true);
    assert.equal(t.wouldDeadlock(B, F_WRLCK, 2, 2), false, 'no conflict at all');
    assert.equal(t.wouldDeadlock(C, F_WRLCK, 0, 0), false, 'C holds nothing A waits for');
  });

  test('a longer cycle through three owners is found', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_WRLCK, 0, 0);
    t.trySet(B, 20, F_WRLCK, 1, 1);
    t.trySet(C, 30, F_WRLCK, 2, 2);
    t.setOrWait(A, 10, F_WRLCK, 1, 1, 1n); // A waits for B
    t.setOrWait(B, 20, F_WRLCK, 2, 2, 2n); // B waits for C
    assert.equal(t.wouldDeadlock(C, F_WRLCK, 0, 0), true); // C would wait for A
    assert.equal(t.wouldDeadlock(C, F_RDLCK, 5, 5), false);
  });

  test('waiting behind a holder that waits for someone else is not a deadlock', () => {
    const t = new LockTable();
    t.trySet(A, 10, F_WRLCK, 0, 0);
    t.trySet(B, 20, F_WRLCK, 1, 1);
    t.setOrWait(B, 20, F_WRLCK, 0, 0, 1n); // B waits for A
    assert.equal(t.wouldDeadlock(C, F_WRLCK, 1, 1), false); // C waits for B, B for A: a chain, no cycle
  });
});
