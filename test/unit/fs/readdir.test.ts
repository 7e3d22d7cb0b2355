/**
 * READDIR of the LiteFS root: the kernel reads a listing in pieces, each
 * from the offset the previous one ended at. The listing is made once per
 * open directory (at offset 0) and later pieces come from it; a fresh
 * listing per piece checked three files per database each time (quadratic
 * in the number of databases). The handler runs without a kernel here.
 */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { FUSE_ROOT_ID, Opcode } from '../../../src/fuse/abi.js';
import type { NoticeQueue } from '../../../src/fuse/notices.js';
import type { DirentWriter, OpenOut } from '../../../src/fuse/replies.js';
import type { OpenRequest, ReadRequest, ReleaseRequest } from '../../../src/fuse/requests.js';
import { LiteFS } from '../../../src/fs/litefs-fs.js';
import { RealIO } from '../../../src/store/io.js';
import { Store } from '../../../src/store/store.js';
import { type Harness, harness, tx } from '../store/store-fixture.js';

/** Real I/O that counts existence checks. */
class ExistsCounter extends RealIO {
  checks = 0;
  override exists(path: string): boolean {
    this.checks++;
    return super.exists(path);
  }
}

describe('litefs: READDIR of the root in pieces', () => {
  let h: Harness;
  let io: ExistsCounter;
  let store: Store;
  let fs: LiteFS;

  function opendir(): number {
    const out: OpenOut = { fh: 0, openFlags: 0 };
    fs.opendir({ opcode: Opcode.OPENDIR, header: { nodeid: FUSE_ROOT_ID } } as unknown as OpenRequest, out);
    return out.fh;
  }

  /** One READDIR that has room for `room` entries: the names and the offset to go on from. */
  function readdir(fh: number, offset: number, room: number): { names: string[]; next: number } {
    const names: string[] = [];
    let next = offset;
    const writer = {
      add(_ino: number, name: string, _type: number, nextOffset: number): boolean {
        if (names.length === room) return false;
        names.push(name);
        next = nextOffset;
        return true;
      },
    };
    fs.readdir({ opcode: Opcode.READDIR, header: { nodeid: FUSE_ROOT_ID }, fh, offset, size: 4096 } as unknown as ReadRequest, writer as unknown as DirentWriter);
    return { names, next };
  }

  /** The whole listing, `room` entries per READDIR, as the kernel reads it. */
  function list(fh: number, room: number): string[] {
    const all: string[] = [];
    let offset = 0;
    for (;;) {
      const piece = readdir(fh, offset, room);
      if (piece.names.length === 0) return all;
      all.push(...piece.names);
      offset = piece.next;
    }
  }

  function commit(name: string): void {
    tx(store.createDB(name), 1, 2);
  }

  beforeEach(() => {
    h = harness();
    io = new ExistsCounter();
    store = new Store({ dataDir: h.dataDir, compress: false, strictVerify: true, nodeId: 'node1' }, () => {}, () => {}, io);
    store.open();
    for (let i = 0; i < 20; i++) commit(`db${String(i).padStart(2, '0')}`);
    fs = new LiteFS(store, () => {}, () => {}, undefined as unknown as NoticeQueue);
  });
  afterEach(() => rmSync(h.base, { recursive: true, force: true }));

  test('pieces after the first come from the listing made at offset 0', () => {
    const fh = opendir();
    const whole = list(fh, 1000);
    assert.equal(whole.length, 3 + 20 * 2, '".", "..", ".lag", and each database with its -pos');
    io.checks = 0;
    readdir(fh, 0, 5);
    const perListing = io.checks;
    assert.ok(perListing > 0);
    io.checks = 0;
    assert.deepEqual(list(fh, 5), whole, 'read five at a time: the same listing');
    assert.equal(io.checks, perListing, 'one listing for all nine pieces');
  });

  test('a database committed during a listing shows from the next listing on; RELEASEDIR forgets it', () => {
    const fh = opendir();
    const first = readdir(fh, 0, 10);
    commit('late');
    const rest = readdir(fh, first.next, 1000);
    assert.deepEqual([...first.names, ...rest.names].filter((n) => n.startsWith('late')), [], 'not in the listing being read');
    assert.equal(first.names.length + rest.names.length, 3 + 20 * 2);
    assert.ok(list(fh, 1000).includes('late'), 'a read from offset 0 lists again');
    fs.releasedir({ opcode: Opcode.RELEASEDIR, header: { nodeid: FUSE_ROOT_ID }, fh } as unknown as ReleaseRequest);
    const other = opendir();
    assert.notEqual(other, fh);
    assert.ok(list(other, 7).includes('late'));
  });
});
