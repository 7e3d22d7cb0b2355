/**
 * FSYNCDIR of the LiteFS root (SQLite syncs the folder after creating a
 * journal or WAL): the entries live in each database's own folder, and only
 * the folders whose entries the mount changed since are synced. It was one
 * fsync per database on every such request, so a rollback-journal commit
 * cost as many fsyncs as the node had databases. The handler runs without a
 * kernel here; the store's I/O is real, with its folder syncs recorded.
 */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { FUSE_ROOT_ID, Opcode } from '../../../src/fuse/abi.js';
import type { NoticeQueue } from '../../../src/fuse/notices.js';
import { type OpenOut, newEntryOut } from '../../../src/fuse/replies.js';
import type { CreateRequest, ReleaseRequest, UnlinkRequest } from '../../../src/fuse/requests.js';
import { LiteFS } from '../../../src/fs/litefs-fs.js';
import { RealIO } from '../../../src/store/io.js';
import { Store } from '../../../src/store/store.js';
import { type Harness, harness } from '../store/store-fixture.js';

/** Real I/O that remembers which folders were fsynced. */
class FolderSyncRecorder extends RealIO {
  synced: string[] = [];
  override fsyncDir(path: string): void {
    this.synced.push(path);
    super.fsyncDir(path);
  }
}

describe('litefs: FSYNCDIR of the root', () => {
  let h: Harness;
  let io: FolderSyncRecorder;
  let store: Store;
  let fs: LiteFS;

  function create(name: string): void {
    const open: OpenOut = { fh: 0, openFlags: 0 };
    const req = { opcode: Opcode.CREATE, header: { nodeid: FUSE_ROOT_ID }, name, flags: 0, mode: 0o644, umask: 0, openFlags: 0 };
    fs.create(req as unknown as CreateRequest, newEntryOut(), open);
    fs.release({ opcode: Opcode.RELEASE, header: { nodeid: 0 }, fh: open.fh } as unknown as ReleaseRequest);
  }

  function unlink(name: string): void {
    fs.unlink({ opcode: Opcode.UNLINK, header: { nodeid: FUSE_ROOT_ID }, name } as unknown as UnlinkRequest);
  }

  /** The folders one FSYNCDIR synced. */
  function fsyncdir(): string[] {
    io.synced = [];
    fs.fsyncdir();
    return io.synced;
  }

  beforeEach(() => {
    h = harness();
    io = new FolderSyncRecorder();
    store = new Store({ dataDir: h.dataDir, compress: false, strictVerify: true, nodeId: 'node1' }, () => {}, () => {}, io);
    store.open();
    for (const name of ['a.db', 'b.db', 'c.db']) store.createDB(name);
    fs = new LiteFS(store, () => {}, () => {}, undefined as unknown as NoticeQueue);
  });
  afterEach(() => rmSync(h.base, { recursive: true, force: true }));

  test('syncs only the folder of the database whose journal was just created, once', () => {
    assert.deepEqual(fsyncdir(), [], 'nothing changed since the databases were created (and synced)');
    create('b.db-journal');
    assert.deepEqual(fsyncdir(), [store.db('b.db')!.dir]);
    assert.deepEqual(fsyncdir(), [], 'already durable');
  });

  test('a removal through the mount makes the folder due again', () => {
    create('c.db-wal');
    create('a.db-shm');
    assert.deepEqual(fsyncdir().sort(), [store.db('a.db')!.dir, store.db('c.db')!.dir].sort());
    unlink('a.db-shm');
    assert.deepEqual(fsyncdir(), [store.db('a.db')!.dir]);
  });
});
