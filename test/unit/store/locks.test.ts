import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DATABASE_LOCKS,
  DatabaseLocks,
  formatLocks,
  fromDatabaseLocks,
  fromShmLocks,
  Lock,
  LOCK_COUNT,
  LockQuery,
  newInternalOwner,
  READ_LOCKS,
  SHM_LOCKS,
  type LockMask,
} from '../../../src/store/locks.js';
import {
  databaseLocksInRange,
  PENDING_BYTE,
  RESERVED_BYTE,
  SHARED_FIRST,
  SHARED_SIZE,
  shmLocksInRange,
  SHM_DMS_BYTE,
  SHM_WAL_CKPT_BYTE,
  SHM_WAL_READ0_BYTE,
  SHM_WAL_WRITE_BYTE,
} from '../../../src/sqlite/index.js';
import { xorshift32 } from '../../helpers/rng.js';

const A = 1n;
const B = 2n;
const C = 3n;
const EOF_END = Number.MAX_SAFE_INTEGER;

/** Lock mask of a database-file fcntl range, as the FUSE layer will compute it. */
function dbRange(start: number, len: number): LockMask {
  return fromDatabaseLocks(databaseLocksInRange(start, len === 0 ? EOF_END : start + len - 1));
}

/** Lock mask of a `-shm` fcntl range. */
function shmRange(start: number, len: number): LockMask {
  return fromShmLocks(shmLocksInRange(start, len === 0 ? EOF_END : start + len - 1));
}

function holdings(locks: DatabaseLocks, owner: bigint): string {
  return `shared=${formatLocks(locks.sharedBy(owner))} exclusive=${formatLocks(locks.exclusiveBy(owner))}`;
}

describe('lock masks', () => {
  test('database and shm bits map onto distinct bits of one mask', () => {
    assert.equal(dbRange(PENDING_BYTE, 1), Lock.PENDING);
    assert.equal(dbRange(RESERVED_BYTE, 1), Lock.RESERVED);
    assert.equal(dbRange(SHARED_FIRST, SHARED_SIZE), Lock.SHARED);
    assert.equal(dbRange(0, 0), DATABASE_LOCKS);
    assert.equal(shmRange(SHM_WAL_WRITE_BYTE, 1), Lock.WRITE);
    assert.equal(shmRange(SHM_WAL_CKPT_BYTE, 2), Lock.CKPT | Lock.RECOVER);
    assert.equal(shmRange(SHM_WAL_READ0_BYTE, 5), READ_LOCKS);
    assert.equal(shmRange(SHM_DMS_BYTE, 1), Lock.DMS);
    assert.equal(shmRange(0, 0), SHM_LOCKS);
    assert.equal(DATABASE_LOCKS & SHM_LOCKS, 0);
    assert.equal(DATABASE_LOCKS | SHM_LOCKS, (1 << LOCK_COUNT) - 1);
    assert.equal(formatLocks(Lock.PENDING | Lock.DMS), 'PENDING|DMS');
  });
});

describe('one mutex', () => {
  test('readers share, a writer excludes everyone else', () => {
    const l = new DatabaseLocks();
    assert.ok(l.tryRLock(A, Lock.SHARED));
    assert.ok(l.tryRLock(B, Lock.SHARED));
    assert.equal(l.readerCount(Lock.SHARED), 2);
    assert.ok(!l.tryLock(C, Lock.SHARED));
    l.unlock(A, Lock.SHARED);
    l.unlock(B, Lock.SHARED);
    assert.ok(l.tryLock(C, Lock.SHARED));
    assert.ok(!l.tryRLock(A, Lock.SHARED));
    assert.ok(!l.tryLock(A, Lock.SHARED));
  });

  test('a sole reader upgrades in place; one of two readers cannot', () => {
    const l = new DatabaseLocks();
    assert.ok(l.tryRLock(A, Lock.RESERVED));
    assert.ok(l.tryLock(A, Lock.RESERVED));
    assert.equal(l.exclusiveBy(A), Lock.RESERVED);
    assert.equal(l.sharedBy(A), 0);
    assert.equal(l.readerCount(Lock.RESERVED), 0);
    l.unlock(A, Lock.RESERVED);
    assert.ok(l.tryRLock(A, Lock.RESERVED));
    assert.ok(l.tryRLock(B, Lock.RESERVED));
    assert.ok(!l.tryLock(A, Lock.RESERVED));
    assert.equal(l.sharedBy(A), Lock.RESERVED, 'the refused upgrade keeps the shared lock');
    l.unlock(B, Lock.RESERVED);
    assert.ok(l.tryLock(A, Lock.RESERVED));
  });

  test('a writer downgrades to a reader in place; others can then read', () => {
    const l = new DatabaseLocks();
    assert.ok(l.tryLock(A, Lock.SHARED));
    assert.ok(l.tryRLock(A, Lock.SHARED));
    assert.equal(l.sharedBy(A), Lock.SHARED);
    assert.equal(l.exclusiveBy(A), 0);
    assert.ok(l.tryRLock(B, Lock.SHARED));
    assert.equal(l.readerCount(Lock.SHARED), 2);
  });

  test('re-locking the same mode is a no-op and unlocking what is not held changes nothing', () => {
    const l = new DatabaseLocks();
    assert.ok(l.tryRLock(A, Lock.SHARED));
    assert.ok(l.tryRLock(A, Lock.SHARED));
    assert.equal(l.readerCount(Lock.SHARED), 1);
    assert.ok(l.tryLock(B, Lock.PENDING));
    assert.ok(l.tryLock(B, Lock.PENDING));
    l.unlock(C, DATABASE_LOCKS | SHM_LOCKS);
    l.unlock(A, Lock.PENDING);
    assert.equal(l.exclusiveBy(B), Lock.PENDING);
    assert.equal(l.readerCount(Lock.SHARED), 1);
    assert.ok(l.tryLock(A, 0));
    assert.equal(l.ownerCount, 2, 'an empty request registers nothing');
  });
});

describe('multi-lock requests', () => {
  test('are all-or-nothing: a refused request changes nothing', () => {
    const l = new DatabaseLocks();
    assert.ok(l.tryLock(B, Lock.SHARED));
    assert.ok(!l.tryRLock(A, Lock.PENDING | Lock.SHARED));
    assert.equal(holdings(l, A), 'shared=none exclusive=none');
    assert.ok(!l.tryLock(A, Lock.PENDING | Lock.RESERVED | Lock.SHARED));
    assert.equal(holdings(l, A), 'shared=none exclusive=none');
    assert.equal(l.exclusiveLocks, Lock.SHARED);
    assert.equal(l.ownerCount, 1);
  });

  test('mix upgrades, downgrades and fresh grants in one request', () => {
    const l = new DatabaseLocks();
    assert.ok(l.tryRLock(A, Lock.CKPT));
    assert.ok(l.tryLock(A, Lock.READ1));
    assert.ok(l.tryLock(A, Lock.CKPT | Lock.RECOVER));
    assert.equal(l.exclusiveBy(A), Lock.CKPT | Lock.RECOVER | Lock.READ1);
    assert.ok(l.tryRLock(A, Lock.READ1 | Lock.READ2));
    assert.equal(l.sharedBy(A), Lock.READ1 | Lock.READ2);
    assert.equal(l.exclusiveBy(A), Lock.CKPT | Lock.RECOVER);
  });
});

describe('owners', () => {
  test('FLUSH on the database and on the shm release their own locks only', () => {
    const l = new DatabaseLocks();
    assert.ok(l.tryRLock(A, Lock.SHARED | Lock.DMS | Lock.READ0));
    assert.ok(l.tryLock(A, Lock.WRITE));
    l.releaseDatabaseLocks(A);
    assert.equal(holdings(l, A), 'shared=READ0|DMS exclusive=WRITE');
    assert.ok(l.releasesWalWrite(A, SHM_LOCKS));
    l.releaseShmLocks(A);
    assert.equal(l.ownerCount, 0, 'the empty guard set is freed');
    assert.equal(l.sharedLocks | l.exclusiveLocks, 0);
  });

  test('guard sets are freed and reused as owners come and go', () => {
    const l = new DatabaseLocks();
    for (let i = 0n; i < 10_000n; i++) {
      assert.ok(l.tryRLock(i, Lock.PENDING | Lock.SHARED));
      l.unlock(i, Lock.PENDING);
      l.releaseDatabaseLocks(i);
    }
    assert.equal(l.ownerCount, 0);
    assert.equal(l.readerCount(Lock.SHARED), 0);
  });

  test('releasesWalWrite only for the exclusive holder of WRITE when the range covers it', () => {
    const l = new DatabaseLocks();
    assert.ok(l.tryLock(A, Lock.WRITE));
    assert.ok(l.releasesWalWrite(A, Lock.WRITE));
    assert.ok(l.releasesWalWrite(A, shmRange(0, 0)));
    assert.ok(!l.releasesWalWrite(A, Lock.CKPT));
    assert.ok(!l.releasesWalWrite(B, Lock.WRITE));
    l.unlock(A, Lock.WRITE);
    assert.ok(l.tryRLock(A, Lock.WRITE));
    assert.ok(!l.releasesWalWrite(A, Lock.WRITE), 'a shared WRITE is no commit signal');
  });
});

describe('the CKPT rule (ref §5.4)', () => {
  test('no exclusive CKPT while another owner holds WRITE in any mode', () => {
    const l = new DatabaseLocks();
    assert.ok(l.tryLock(A, Lock.WRITE));
    assert.ok(!l.tryLock(B, Lock.CKPT));
    assert.ok(!l.tryLock(B, Lock.CKPT | Lock.RECOVER));
    assert.ok(l.tryRLock(B, Lock.CKPT), 'a shared CKPT is not a checkpoint');
    l.unlock(B, Lock.CKPT);
    l.unlock(A, Lock.WRITE);
    assert.ok(l.tryRLock(A, Lock.WRITE));
    assert.ok(!l.tryLock(B, Lock.CKPT));
    assert.ok(!l.tryLock(A, Lock.CKPT), 'holding WRITE only shared does not exempt the owner');
    l.unlock(A, Lock.WRITE);
    assert.ok(l.tryLock(B, Lock.CKPT));
  });

  test('the exclusive holder of WRITE may checkpoint, and so may a request that takes WRITE too', () => {
    const l = new DatabaseLocks();
    assert.ok(l.tryLock(A, Lock.WRITE));
    assert.ok(l.tryLock(A, Lock.CKPT | Lock.RECOVER));
    l.releaseAll(A);
    assert.ok(l.tryLock(B, Lock.WRITE | Lock.CKPT));
    l.releaseAll(B);
    assert.ok(l.tryLock(A, Lock.WRITE));
    assert.ok(!l.tryLock(B, Lock.WRITE | Lock.CKPT));
  });

  test('F_GETLK honours it', () => {
    const l = new DatabaseLocks();
    assert.ok(l.tryLock(A, Lock.WRITE));
    assert.equal(l.query(B, true, Lock.CKPT), LockQuery.WRITE);
    assert.equal(l.query(A, true, Lock.CKPT), LockQuery.UNLOCKED);
    assert.ok(l.tryRLock(A, Lock.WRITE));
    assert.equal(l.query(B, true, Lock.CKPT), LockQuery.READ);
  });
});

describe('F_GETLK (ref §4.5)', () => {
  test('answers for read and write queries', () => {
    const l = new DatabaseLocks();
    assert.equal(l.query(A, false, Lock.DMS), LockQuery.UNLOCKED);
    assert.equal(l.query(A, true, Lock.DMS), LockQuery.UNLOCKED);
    assert.ok(l.tryRLock(B, Lock.DMS));
    assert.equal(l.query(A, false, Lock.DMS), LockQuery.UNLOCKED);
    assert.equal(l.query(A, true, Lock.DMS), LockQuery.READ);
    assert.equal(l.query(B, true, Lock.DMS), LockQuery.UNLOCKED, 'a sole reader may upgrade');
    assert.ok(l.tryLock(C, Lock.PENDING));
    assert.equal(l.query(A, false, Lock.PENDING), LockQuery.WRITE);
    assert.equal(l.query(A, true, Lock.PENDING | Lock.DMS), LockQuery.WRITE, 'an exclusive blocker wins');
    assert.equal(l.query(C, false, Lock.PENDING), LockQuery.UNLOCKED);
    assert.equal(l.ownerCount, 2, 'queries register no owner');
  });
});

describe('internal lock sets', () => {
  test('rollback write set: EXCLUSIVE on the database, refused while anyone reads', () => {
    const l = new DatabaseLocks();
    const me = newInternalOwner();
    assert.ok(me < 0n);
    assert.ok(l.tryRLock(A, Lock.SHARED));
    assert.ok(!l.tryAcquireWriteSet(me, 'rollback'));
    assert.equal(l.ownerCount, 1);
    l.releaseAll(A);
    assert.ok(l.tryAcquireWriteSet(me, 'rollback'));
    assert.equal(l.exclusiveBy(me), DATABASE_LOCKS);
    assert.equal(l.sharedBy(me), 0);
    assert.ok(!l.tryRLock(A, Lock.PENDING), 'new readers are kept out');
    l.releaseAll(me);
    assert.equal(l.ownerCount, 0);
  });

  test('WAL write set: open connections do not block it, readers, writers and checkpointers do', () => {
    const l = new DatabaseLocks();
    const me = newInternalOwner();
    // Two idle connections: SHARED on the database and DMS shared, as SQLite keeps.
    assert.ok(l.tryRLock(A, Lock.SHARED | Lock.DMS));
    assert.ok(l.tryRLock(B, Lock.SHARED | Lock.DMS));
    assert.ok(l.tryAcquireWriteSet(me, 'wal'));
    assert.equal(l.sharedBy(me), Lock.SHARED | Lock.DMS);
    assert.equal(l.exclusiveBy(me), Lock.WRITE | Lock.CKPT | Lock.RECOVER | READ_LOCKS);
    assert.ok(!l.tryRLock(A, Lock.READ0), 'a new read transaction must wait');
    assert.ok(!l.tryLock(A, Lock.WRITE));
    l.releaseAll(me);
    for (const blocker of [Lock.READ3, Lock.WRITE, Lock.CKPT]) {
      assert.ok(blocker === Lock.WRITE ? l.tryLock(A, blocker) : l.tryRLock(A, blocker));
      assert.ok(!l.tryAcquireWriteSet(me, 'wal'), `blocked by ${formatLocks(blocker)}`);
      assert.equal(l.exclusiveBy(me) | l.sharedBy(me), 0);
      l.unlock(A, blocker);
    }
    assert.ok(l.tryLock(C, Lock.PENDING));
    assert.ok(!l.tryAcquireWriteSet(me, 'wal'), 'PENDING held exclusively: the last connection is closing');
  });

  test('write sets ignore the fence', () => {
    const l = new DatabaseLocks();
    l.setFenced(true);
    assert.ok(l.tryAcquireWriteSet(newInternalOwner(), 'wal'));
  });

  test('snapshot read set lets readers and writers on, keeps checkpoints off; export keeps CKPT', () => {
    const l = new DatabaseLocks();
    const snap = newInternalOwner();
    assert.ok(l.tryAcquireReadSet(snap, 'wal', 'snapshot'));
    assert.equal(l.sharedBy(snap), Lock.SHARED | READ_LOCKS);
    assert.ok(l.tryRLock(A, Lock.SHARED | Lock.READ1));
    assert.ok(l.tryLock(B, Lock.WRITE), 'WAL writers still append');
    l.unlock(B, Lock.WRITE);
    assert.ok(l.tryLock(B, Lock.CKPT), 'CKPT is free during a snapshot (issue #339)');
    assert.ok(!l.tryLock(B, Lock.READ1), 'but the checkpointer cannot take a read mark');
    l.releaseAll(B);
    const exp = newInternalOwner();
    assert.ok(l.tryAcquireReadSet(exp, 'wal', 'export'));
    assert.ok(!l.tryLock(B, Lock.CKPT));
    l.releaseAll(exp);
    l.releaseAll(snap);
    assert.ok(l.tryLock(B, Lock.CKPT | Lock.RECOVER));
    assert.ok(!l.tryAcquireReadSet(snap, 'wal', 'snapshot'), 'a running recovery blocks a snapshot');
  });

  test('rollback read set blocks commits for its duration', () => {
    const l = new DatabaseLocks();
    const snap = newInternalOwner();
    assert.ok(l.tryAcquireReadSet(snap, 'rollback', 'snapshot'));
    assert.ok(l.tryLock(A, Lock.RESERVED));
    assert.ok(l.tryLock(A, Lock.PENDING));
    assert.ok(!l.tryLock(A, Lock.SHARED));
    l.releaseAll(snap);
    assert.ok(l.tryLock(A, Lock.SHARED));
    assert.ok(!l.tryAcquireReadSet(snap, 'rollback', 'snapshot'));
  });
});

describe('fencing', () => {
  test('refuses new RESERVED and WRITE grants, lets holders finish, leaves readers alone', () => {
    const l = new DatabaseLocks();
    assert.ok(l.tryLock(A, Lock.RESERVED));
    assert.ok(l.tryRLock(B, Lock.WRITE | Lock.READ1));
    l.setFenced(true);
    assert.ok(l.fenced);
    assert.ok(l.writerActive);
    assert.ok(l.tryLock(A, Lock.RESERVED), 'an existing holder re-locks');
    assert.ok(l.tryLock(A, Lock.PENDING), 'and proceeds to EXCLUSIVE');
    assert.ok(!l.tryLock(B, Lock.WRITE), 'no upgrade to a new writer');
    assert.ok(!l.canLock(C, Lock.RESERVED));
    assert.ok(l.tryRLock(C, Lock.SHARED | Lock.READ0));
    assert.equal(l.query(C, true, Lock.DMS), LockQuery.UNLOCKED);
    l.releaseAll(A);
    assert.ok(!l.writerActive);
    assert.ok(!l.tryLock(C, Lock.RESERVED));
    l.setFenced(false);
    assert.ok(l.tryLock(C, Lock.RESERVED));
  });

  test('WAL WRITE without a read mark (wal-index recovery) is not fenced', () => {
    const l = new DatabaseLocks();
    l.setFenced(true);
    assert.ok(l.tryRLock(A, Lock.SHARED | Lock.DMS));
    assert.ok(l.tryLock(A, Lock.WRITE), 'a reader rebuilding the wal-index');
    assert.ok(l.tryLock(A, Lock.CKPT | Lock.RECOVER));
    l.unlock(A, Lock.WRITE | Lock.CKPT | Lock.RECOVER);
    assert.ok(l.tryRLock(A, Lock.READ0));
    assert.ok(!l.tryLock(A, Lock.WRITE), 'a write transaction (inside a read transaction) is fenced');
    assert.ok(l.fencedFor(A, Lock.WRITE));
  });
});

describe('SQLite acquisition sequences (formats.md B.3)', () => {
  /** A connection issuing SQLite's unix-VFS fcntl calls for the rollback journal. */
  class Connection {
    constructor(
      private readonly l: DatabaseLocks,
      readonly owner: bigint,
    ) {}
    shared(): boolean {
      if (!this.l.tryRLock(this.owner, dbRange(PENDING_BYTE, 1))) return false;
      const ok = this.l.tryRLock(this.owner, dbRange(SHARED_FIRST, SHARED_SIZE));
      this.l.unlock(this.owner, dbRange(PENDING_BYTE, 1));
      return ok;
    }
    reserved(): boolean {
      return this.l.tryLock(this.owner, dbRange(RESERVED_BYTE, 1));
    }
    /** SQLite keeps PENDING when the SHARED step fails and retries only that. */
    exclusive(): boolean {
      if (!this.l.tryLock(this.owner, dbRange(PENDING_BYTE, 1))) return false;
      return this.l.tryLock(this.owner, dbRange(SHARED_FIRST, SHARED_SIZE));
    }
    backToShared(): void {
      assert.ok(this.l.tryRLock(this.owner, dbRange(SHARED_FIRST, SHARED_SIZE)));
      this.l.unlock(this.owner, dbRange(PENDING_BYTE, 2));
    }
    none(): void {
      this.l.unlock(this.owner, dbRange(0, 0));
    }
  }

  test('three connections in rollback mode end in the right conflicts', () => {
    const l = new DatabaseLocks();
    const [a, b, c] = [new Connection(l, A), new Connection(l, B), new Connection(l, C)];
    assert.ok(a.shared());
    assert.ok(b.shared());
    assert.ok(a.reserved());
    assert.ok(!b.reserved(), 'one writer at a time');
    assert.ok(!a.exclusive(), 'B still reads');
    assert.equal(l.exclusiveBy(A), Lock.RESERVED | Lock.PENDING, 'A keeps PENDING while waiting');
    assert.ok(!c.shared(), 'PENDING keeps new readers out');
    assert.equal(l.sharedBy(C), 0);
    assert.equal(l.query(C, true, dbRange(RESERVED_BYTE, 1)), LockQuery.WRITE, 'RESERVED probe sees a writer');
    b.none();
    assert.ok(a.exclusive());
    assert.equal(l.exclusiveBy(A), DATABASE_LOCKS);
    a.backToShared();
    assert.equal(holdings(l, A), 'shared=SHARED exclusive=none');
    assert.ok(c.shared());
    assert.ok(c.reserved());
    a.none();
    c.none();
    assert.equal(l.ownerCount, 0);
    assert.equal(l.sharedLocks | l.exclusiveLocks, 0);
  });

  test('WAL: DMS probe at open, readers on marks, one writer, checkpointer waits for WRITE and marks', () => {
    const l = new DatabaseLocks();
    const open = (o: bigint): void => {
      assert.ok(l.tryRLock(o, dbRange(PENDING_BYTE, 1)));
      assert.ok(l.tryRLock(o, dbRange(SHARED_FIRST, SHARED_SIZE)));
      l.unlock(o, dbRange(PENDING_BYTE, 1));
      const dms = shmRange(SHM_DMS_BYTE, 1);
      if (l.query(o, true, dms) === LockQuery.UNLOCKED) {
        assert.ok(l.tryLock(o, dms), 'first opener initialises the shm');
      }
      assert.ok(l.tryRLock(o, dms));
    };
    open(A);
    assert.equal(l.query(B, true, shmRange(SHM_DMS_BYTE, 1)), LockQuery.READ);
    open(B);
    open(C);
    assert.equal(l.readerCount(Lock.DMS), 3);

    // A reads at mark 1, B writes, C tries to checkpoint.
    assert.ok(l.tryRLock(A, Lock.READ1));
    assert.ok(l.tryRLock(B, Lock.READ0));
    assert.ok(l.tryLock(B, shmRange(SHM_WAL_WRITE_BYTE, 1)));
    assert.ok(!l.tryLock(C, shmRange(SHM_WAL_WRITE_BYTE, 1)));
    assert.ok(!l.tryLock(C, shmRange(SHM_WAL_CKPT_BYTE, 1)), 'CKPT rule');
    assert.ok(l.releasesWalWrite(B, shmRange(SHM_WAL_WRITE_BYTE, 1)));
    l.unlock(B, shmRange(SHM_WAL_WRITE_BYTE, 1));
    l.unlock(B, Lock.READ0);
    assert.ok(l.tryLock(C, shmRange(SHM_WAL_CKPT_BYTE, 1)));
    assert.ok(!l.tryLock(C, Lock.READ1), 'A still reads at mark 1');
    assert.ok(l.tryLock(C, Lock.READ2));
    l.unlock(C, Lock.READ2 | Lock.CKPT);
    l.unlock(A, Lock.READ1);

    // Last connection to close: EXCLUSIVE fails while others have the database open.
    assert.ok(!l.tryLock(A, dbRange(SHARED_FIRST, SHARED_SIZE)));
    for (const o of [B, C]) {
      l.releaseShmLocks(o);
      l.releaseDatabaseLocks(o);
    }
    assert.ok(l.tryLock(A, dbRange(PENDING_BYTE, 1)));
    assert.ok(l.tryLock(A, dbRange(SHARED_FIRST, SHARED_SIZE)));
    assert.ok(l.tryLock(A, shmRange(SHM_DMS_BYTE, 1)));
  });
});

describe('randomized against a reference model', () => {
  /** Per owner, per lock: 0 unlocked, 1 shared, 2 exclusive. Plain, slow, obviously right. */
  class Reference {
    readonly state = new Map<bigint, number[]>();
    fenced = false;
    private get(o: bigint): number[] {
      let s = this.state.get(o);
      if (s === undefined) this.state.set(o, (s = new Array<number>(LOCK_COUNT).fill(0)));
      return s;
    }
    private others(o: bigint, i: number): number[] {
      const out: number[] = [];
      for (const [k, s] of this.state) if (k !== o && s[i] !== 0) out.push(s[i]!);
      return out;
    }
    canWrite(o: bigint, mask: number, fence: boolean): boolean {
      const mine = this.state.get(o);
      for (let i = 0; i < LOCK_COUNT; i++) {
        if (!(mask & (1 << i))) continue;
        if (this.others(o, i).length > 0) return false;
        const inReadTx = [6, 7, 8, 9, 10].some((r) => mine?.[r] === 1);
        const writer = ((1 << i) & Lock.RESERVED) !== 0 || (((1 << i) & Lock.WRITE) !== 0 && inReadTx);
        if (fence && this.fenced && writer && mine?.[i] !== 2) return false;
      }
      if (mask & Lock.CKPT && !(mask & Lock.WRITE)) {
        const writeIdx = 3;
        const mineWrite = mine?.[writeIdx] ?? 0;
        if (mineWrite !== 2 && (mineWrite !== 0 || this.others(o, writeIdx).length > 0)) return false;
      }
      return true;
    }
    canRead(o: bigint, mask: number): boolean {
      for (let i = 0; i < LOCK_COUNT; i++) {
        if (mask & (1 << i) && this.others(o, i).includes(2)) return false;
      }
      return true;
    }
    set(o: bigint, mask: number, value: number): void {
      const s = this.get(o);
      for (let i = 0; i < LOCK_COUNT; i++) if (mask & (1 << i)) s[i] = value;
      if (s.every((v) => v === 0)) this.state.delete(o);
    }
    masks(o: bigint): [number, number] {
      let sh = 0;
      let ex = 0;
      const s = this.state.get(o);
      if (s) for (let i = 0; i < LOCK_COUNT; i++) {
        if (s[i] === 1) sh |= 1 << i;
        if (s[i] === 2) ex |= 1 << i;
      }
      return [sh, ex];
    }
  }

  const rng = xorshift32;

  test('10 seeds x 5000 operations over 4 owners agree with the reference', () => {
    const owners = [1n, 2n, 3n, 4n];
    for (let seed = 1; seed <= 10; seed++) {
      const next = rng(seed * 7919);
      const l = new DatabaseLocks();
      const ref = new Reference();
      for (let step = 0; step < 5000; step++) {
        const o = owners[next() % owners.length]!;
        // Small masks most of the time: conflicts are what we want to exercise.
        const mask = next() % 4 === 0 ? next() & 0xfff : 1 << (next() % LOCK_COUNT) | (next() % 3 === 0 ? 1 << (next() % LOCK_COUNT) : 0);
        const op = next() % 10;
        const where = `seed ${seed} step ${step} owner ${o} op ${op} mask ${formatLocks(mask)}`;
        if (op <= 2) {
          const expected = ref.canWrite(o, mask, true);
          assert.equal(l.canLock(o, mask), expected, where);
          assert.equal(l.tryLock(o, mask), expected, where);
          if (expected) ref.set(o, mask, 2);
        } else if (op <= 5) {
          const expected = ref.canRead(o, mask);
          assert.equal(l.canRLock(o, mask), expected, where);
          assert.equal(l.tryRLock(o, mask), expected, where);
          if (expected) ref.set(o, mask, 1);
        } else if (op <= 7) {
          const [, ex] = ref.masks(o);
          assert.equal(l.releasesWalWrite(o, mask), (mask & ex & Lock.WRITE) !== 0, where);
          l.unlock(o, mask);
          ref.set(o, mask, 0);
        } else if (op === 8) {
          const exclusive = next() % 2 === 0;
          const answer = l.query(o, exclusive, mask);
          const blocked = exclusive ? !ref.canWrite(o, mask, false) : !ref.canRead(o, mask);
          assert.equal(answer !== LockQuery.UNLOCKED, blocked, where);
        } else {
          ref.fenced = !ref.fenced;
          l.setFenced(ref.fenced);
        }
        for (const p of owners) {
          const [sh, ex] = ref.masks(p);
          assert.equal(l.sharedBy(p), sh, `${where}: shared of ${p}`);
          assert.equal(l.exclusiveBy(p), ex, `${where}: exclusive of ${p}`);
        }
        assert.equal(l.ownerCount, ref.state.size, where);
      }
    }
  });
});
