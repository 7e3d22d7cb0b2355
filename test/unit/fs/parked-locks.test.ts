/**
 * A replica's lock requests that conflict with an apply holding its write
 * lock set wait for its release instead of failing with EAGAIN
 * (src/fs/parked-locks.ts). The file system runs without a kernel here: the
 * session and the notice queue are stand-ins (a notice counts as written
 * when the test says so), so the apply's hold lasts exactly as long as the
 * test wants. Real mounts with SQLite readers cover the same path in
 * test/fuse/litefs-replica-apply.test.ts and the cluster tests.
 */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FUSE_ROOT_ID, Opcode } from '../../../src/fuse/abi.js';
import { DEFERRED } from '../../../src/fuse/handler.js';
import type { NoticeQueue } from '../../../src/fuse/notices.js';
import { newEntryOut } from '../../../src/fuse/replies.js';
import type { FlushRequest, LockRequest, LookupRequest } from '../../../src/fuse/requests.js';
import type { FuseSession } from '../../../src/fuse/session.js';
import { LiteFS } from '../../../src/fs/litefs-fs.js';
import { ParkedLocks } from '../../../src/fs/parked-locks.js';
import { LTXEncoder, makeHeader } from '../../../src/ltx/index.js';
import { Lock } from '../../../src/store/locks.js';
import type { Store } from '../../../src/store/store.js';
import { type Harness, PAGE, harness, imageChecksum, page } from '../store/store-fixture.js';

const F_RDLCK = 0;
const F_WRLCK = 1;
/** SQLite's SHARED lock bytes in a rollback-mode database file. */
const SHARED_FIRST = 0x40000002;
const SHARED_SIZE = 510;

/** A notice queue whose notices are written only when the test calls `writeAll`. */
class HeldNotices {
  private seq = 0;
  private done = 0;
  invalInode(): number {
    return ++this.seq;
  }
  invalEntry(): number {
    return ++this.seq;
  }
  delete(): number {
    return ++this.seq;
  }
  store(): number {
    return ++this.seq;
  }
  flush(): void {}
  written(): number {
    return this.done;
  }
  writeAll(): void {
    this.done = this.seq;
  }
}

describe('replica: lock requests parked while an apply holds its write lock set', () => {
  let h: Harness;
  let store: Store;
  let fs: LiteFS;
  let notices: HeldNotices;
  let answers: [number, number][];
  let files = 0;
  let image = Buffer.alloc(0);
  let checksum = 0n;
  let unique = 100;

  /** The next LTX file: the database becomes `pages` pages of `fill`. */
  function ltx(txid: bigint, pages: number, fill: number): string {
    const pre = checksum;
    image = Buffer.concat(Array.from({ length: pages }, (_, i) => page(fill, i + 1, pages)));
    checksum = imageChecksum(image);
    const chunks: Buffer[] = [];
    const enc = new LTXEncoder({ write: (c) => chunks.push(Buffer.from(c)) });
    enc.encodeHeader(makeHeader({ pageSize: PAGE, commit: pages, minTXID: txid, maxTXID: txid, timestamp: 1000n, preApplyChecksum: txid === 1n ? 0n : pre, nodeID: 9n }));
    for (let p = 1; p <= pages; p++) enc.encodePage(p, image.subarray((p - 1) * PAGE, p * PAGE));
    enc.setPostApplyChecksum(checksum);
    enc.close();
    const dir = join(h.dataDir, 'tmp');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `recv-${++files}.ltx`);
    writeFileSync(path, Buffer.concat(chunks));
    return path;
  }

  function apply(path: string): void {
    fs.onMessage({ type: 'apply', id: files, db: 'r.db', paths: [path], quarantine: null, syncDatabase: true });
  }

  function sharedLock(owner: bigint, type = F_RDLCK): LockRequest {
    const header = { len: 0, opcode: Opcode.SETLK, unique: ++unique, nodeid: databaseIno, uid: 0, gid: 0, pid: 1, totalExtlen: 0 };
    return { opcode: Opcode.SETLK, header, fh: 0, owner, start: SHARED_FIRST, end: SHARED_FIRST + SHARED_SIZE - 1, type, pid: 1, lkFlags: 0 } as LockRequest;
  }

  let databaseIno = 0;

  beforeEach(() => {
    h = harness();
    store = h.open({ startAsReplica: true });
    notices = new HeldNotices();
    answers = [];
    files = 0;
    checksum = 0n;
    fs = new LiteFS(store, () => {}, () => {}, notices as unknown as NoticeQueue);
    fs.init({ complete: (u: number, errno = 0) => answers.push([u, errno]) } as unknown as FuseSession);
    fs.onMessage({ type: 'status', role: 'replica', primaryHostname: 'p', primaryTimestamp: Date.now(), writeDeadline: null });
    // The first file creates the database; nothing of it is cached yet, so it holds nothing.
    apply(ltx(1n, 2, 1));
    assert.equal(store.db('r.db')?.pos.txid, 1n);
    const out = newEntryOut();
    fs.lookup({ opcode: Opcode.LOOKUP, header: { nodeid: FUSE_ROOT_ID }, name: 'r.db' } as unknown as LookupRequest, out);
    databaseIno = out.nodeid;
    // The second holds its set until its invalidations are written.
    apply(ltx(2n, 3, 2));
    assert.equal(store.db('r.db')?.pos.txid, 2n);
  });
  afterEach(() => rmSync(h.base, { recursive: true, force: true }));

  test('a reader is parked, then granted once the invalidations are written', () => {
    const req = sharedLock(7n);
    assert.equal(fs.setlk(req), DEFERRED);
    fs.afterRequest();
    assert.deepEqual(answers, [], 'still held: no answer yet');
    notices.writeAll();
    fs.afterRequest();
    assert.deepEqual(answers, [[req.header.unique, 0]]);
    assert.notEqual(store.db('r.db')!.locks.sharedBy(7n) & Lock.SHARED, 0, 'the reader holds SHARED');
  });

  test('an interrupted parked request is dropped (the session answers EINTR); a flush of its owner answers EAGAIN', () => {
    const interrupted = sharedLock(7n);
    const flushed = sharedLock(8n, F_WRLCK);
    const kept = sharedLock(9n);
    for (const r of [interrupted, flushed, kept]) assert.equal(fs.setlk(r), DEFERRED);
    assert.equal(fs.interrupt(interrupted.header.unique), true);
    assert.equal(fs.interrupt(interrupted.header.unique), false);
    fs.flush({ opcode: Opcode.FLUSH, header: { nodeid: databaseIno }, fh: 0, lockOwner: 8n } as unknown as FlushRequest);
    assert.deepEqual(answers, [[flushed.header.unique, 11]]);
    notices.writeAll();
    fs.afterRequest();
    assert.deepEqual(answers.slice(1), [[kept.header.unique, 0]]);
    assert.equal(store.db('r.db')!.locks.sharedBy(7n), 0, 'the interrupted request was never granted');
  });

  test('without an apply holding the set, requests are answered at once as before', () => {
    notices.writeAll();
    fs.afterRequest();
    assert.equal(fs.setlk(sharedLock(7n)), undefined);
    assert.deepEqual(answers, []);
  });
});

test('ParkedLocks: take returns in arrival order; cancel and cancelOwner remove', () => {
  const p = new ParkedLocks();
  p.park('a', { unique: 1, owner: 1n, mask: 1, exclusive: false });
  p.park('a', { unique: 2, owner: 2n, mask: 1, exclusive: true });
  p.park('b', { unique: 3, owner: 1n, mask: 1, exclusive: false });
  assert.equal(p.cancel(3), true);
  assert.deepEqual(p.take('b'), []);
  assert.deepEqual(
    p.cancelOwner('a', 2n).map((l) => l.unique),
    [2],
  );
  assert.deepEqual(
    p.take('a').map((l) => l.unique),
    [1],
  );
  assert.deepEqual(p.take('a'), []);
});
