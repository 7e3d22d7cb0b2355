/**
 * LOOKUP in the LiteFS root: a database's missing `-journal` or `-wal` is a
 * negative entry the kernel may keep (SQLite asks for both on every read
 * transaction in rollback mode); anything else that is missing stays an
 * uncached ENOENT. The handler runs without a kernel here; the FUSE suite
 * (test/fuse/litefs-lookup-cache.test.ts) shows a reader still finds a hot
 * journal a killed writer left through a real mount.
 */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { Errno, FuseError } from '../../../src/fuse/errors.js';
import { FUSE_ROOT_ID, Opcode } from '../../../src/fuse/abi.js';
import type { NoticeQueue } from '../../../src/fuse/notices.js';
import { type EntryOut, newEntryOut } from '../../../src/fuse/replies.js';
import type { LookupRequest } from '../../../src/fuse/requests.js';
import { LiteFS } from '../../../src/fs/litefs-fs.js';
import type { Store } from '../../../src/store/store.js';
import { type Harness, harness } from '../store/store-fixture.js';

describe('litefs: LOOKUP of missing names', () => {
  let h: Harness;
  let store: Store;
  let fs: LiteFS;

  function lookup(name: string): EntryOut {
    const out = newEntryOut();
    fs.lookup({ opcode: Opcode.LOOKUP, header: { nodeid: FUSE_ROOT_ID }, name } as unknown as LookupRequest, out);
    return out;
  }

  function assertUncachedENOENT(name: string): void {
    assert.throws(
      () => lookup(name),
      (err: unknown) => err instanceof FuseError && err.errno === Errno.ENOENT,
      name,
    );
  }

  beforeEach(() => {
    h = harness();
    store = h.open();
    store.createDB('x.db');
    fs = new LiteFS(store, () => {}, () => {}, undefined as unknown as NoticeQueue);
  });
  afterEach(() => rmSync(h.base, { recursive: true, force: true }));

  test("a database's missing journal and WAL are negative entries with a timeout", () => {
    for (const name of ['x.db-journal', 'x.db-wal']) {
      const out = lookup(name);
      assert.equal(out.nodeid, 0, name);
      assert.ok(out.entryValid > 0, `${name}: the kernel may keep the negative entry`);
    }
  });

  test('an existing journal is a positive entry', () => {
    writeFileSync(store.db('x.db')!.journalPath, Buffer.alloc(512));
    const out = lookup('x.db-journal');
    assert.notEqual(out.nodeid, 0);
    assert.equal(out.attr.size, 512);
  });

  test('names of databases that do not exist, and other missing names, stay uncached errors', () => {
    for (const name of ['nope.db-journal', 'nope.db-wal', 'nope.db', 'x.db-shm']) assertUncachedENOENT(name);
  });
});
