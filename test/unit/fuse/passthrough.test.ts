/**
 * The passthrough file system driven through a FuseSession by scripted
 * requests on a temp folder (no mount, no root): lookups and lookup counts,
 * create/write/read, readdirplus, renames, locks and their release on FLUSH,
 * fallocate and lseek.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Opcode } from '../../../src/fuse/abi.js';
import { Errno } from '../../../src/fuse/errors.js';
import { PassthroughFs } from '../../../src/fuse/passthrough/fs.js';
import { FuseSession } from '../../../src/fuse/session.js';
import { cstr, hex, le32, le64, request } from './bytes.js';
import { ScriptedDevice } from './scripted-device.js';

const root = mkdtempSync(join(tmpdir(), 'fuse-pt-unit-'));
after(() => rmSync(root, { recursive: true, force: true }));

const INIT = request(Opcode.INIT, hex(le32(7), le32(45), le32(131072), le32(0x73fffffb), le32(0), '00'.repeat(44)), { unique: 1, nodeid: 0 });

/** Runs requests produced lazily (each thunk sees the replies so far) and returns the device. */
function run(fs: PassthroughFs, steps: ((dev: ScriptedDevice) => Buffer)[]): ScriptedDevice {
  const dev = new ScriptedDevice().push(INIT);
  const pending = [...steps];
  dev.onRead = () => {
    if (dev.pending > 0) return;
    const next = pending.shift();
    if (next !== undefined) dev.push(next(dev));
  };
  new FuseSession({ fd: -1, device: dev, handler: fs, maxWrite: 128 * 1024 }).run();
  return dev;
}

function folder(name: string): string {
  const d = join(root, name);
  mkdirSync(d);
  return d;
}

const lookup = (unique: number, parent: number, name: string) => () => request(Opcode.LOOKUP, hex(cstr(name)), { unique, nodeid: parent });
const lkIn = (fh: number, owner: number, type: number, start: number, end: bigint | number) =>
  hex(le64(fh), le64(owner), le64(start), le64(end), le32(type), le32(100 + owner), le32(0), le32(0));

describe('PassthroughFs', () => {
  test('lookup answers the backing inode and attributes; a missing name is a cached negative entry', () => {
    const src = folder('lookup');
    writeFileSync(join(src, 'a.txt'), 'hello');
    const ino = statSync(join(src, 'a.txt')).ino;
    const dev = run(new PassthroughFs({ source: src, negativeTimeout: 2, entryTimeout: 3, attrTimeout: 4 }), [lookup(2, 1, 'a.txt'), lookup(4, 1, 'nope')]);
    const e = dev.replyTo(2).payload;
    assert.equal(Number(e.readBigUInt64LE(0)), ino); // nodeid
    assert.equal(e.readBigUInt64LE(16), 3n); // entry_valid
    assert.equal(e.readBigUInt64LE(24), 4n); // attr_valid
    assert.equal(Number(e.readBigUInt64LE(40)), ino); // attr.ino
    assert.equal(e.readBigUInt64LE(48), 5n); // attr.size
    const neg = dev.replyTo(4);
    assert.equal(neg.error, 0);
    assert.equal(neg.payload.readBigUInt64LE(0), 0n);
    assert.equal(neg.payload.readBigUInt64LE(16), 2n);
  });

  test('negative timeout 0 answers ENOENT', () => {
    const src = folder('noneg');
    const dev = run(new PassthroughFs({ source: src, negativeTimeout: 0 }), [lookup(2, 1, 'nope')]);
    assert.equal(dev.replyTo(2).error, -Errno.ENOENT);
  });

  test('create, write, read back, release', () => {
    const src = folder('rw');
    let fh = 0;
    const dev = run(new PassthroughFs({ source: src }), [
      () => request(Opcode.CREATE, hex(le32(0o102), le32(0o100640), le32(0o22), le32(0), cstr('f.bin')), { unique: 2, nodeid: 1 }),
      (d) => {
        fh = Number(d.replyTo(2).payload.readBigUInt64LE(128));
        return request(Opcode.WRITE, hex(le64(fh), le64(3), le32(4), le32(0), le64(0), le32(0), le32(0), 'deadbeef'), { unique: 4 });
      },
      () => request(Opcode.READ, hex(le64(fh), le64(0), le32(100), le32(0), le64(0), le32(0), le32(0)), { unique: 6 }),
      () => request(Opcode.RELEASE, hex(le64(fh), le32(0), le32(0), le64(0)), { unique: 8 }),
    ]);
    assert.equal(dev.replyTo(2).error, 0);
    assert.equal(dev.replyTo(4).payload.readUInt32LE(0), 4);
    assert.equal(dev.replyTo(6).payload.toString('hex'), '000000deadbeef');
    assert.equal(dev.replyTo(8).error, 0);
    assert.equal(statSync(join(src, 'f.bin')).mode & 0o777, 0o640, 'mode as asked, whatever the daemon umask');
  });

  test('readdirplus counts a lookup for each returned entry except . and ..; forget drops them', () => {
    const src = folder('dirplus');
    for (const n of ['x', 'y', 'z']) writeFileSync(join(src, n), n);
    const fs = new PassthroughFs({ source: src });
    let fh = 0;
    const names: string[] = [];
    const nodeids: number[] = [];
    let afterReaddir = { inodes: -1, dirs: -1 };
    let afterForget = { inodes: -1, dirs: -1 };
    run(fs, [
      () => request(Opcode.OPENDIR, hex(le32(0), le32(0)), { unique: 2, nodeid: 1 }),
      (d) => {
        fh = Number(d.replyTo(2).payload.readBigUInt64LE(0));
        return request(Opcode.READDIRPLUS, hex(le64(fh), le64(0), le32(4096), le32(0), le64(0), le32(0), le32(0)), { unique: 4, nodeid: 1 });
      },
      (d) => {
        const p = d.replyTo(4).payload;
        for (let off = 0; off < p.length; ) {
          const namelen = p.readUInt32LE(off + 128 + 16);
          names.push(p.toString('utf8', off + 152, off + 152 + namelen));
          nodeids.push(Number(p.readBigUInt64LE(off)));
          off += (152 + namelen + 7) & ~7;
        }
        return request(Opcode.RELEASEDIR, hex(le64(fh), le32(0), le32(0), le64(0)), { unique: 6, nodeid: 1 });
      },
      () => {
        afterReaddir = fs.stats();
        const ids = nodeids.slice(2);
        return request(Opcode.BATCH_FORGET, hex(le32(ids.length), le32(0), ...ids.map((n) => le64(n) + le64(1))), { unique: 8 });
      },
      () => {
        afterForget = fs.stats();
        return request(Opcode.STATFS, Buffer.alloc(0), { unique: 10, nodeid: 1 });
      },
    ]);
    assert.deepEqual(names.slice(0, 2), ['.', '..']);
    assert.deepEqual(names.slice(2).sort(), ['x', 'y', 'z']);
    assert.deepEqual(nodeids.slice(0, 2), [0, 0]);
    assert.equal(afterReaddir.inodes, 3);
    assert.equal(afterReaddir.dirs, 0, 'RELEASEDIR dropped the handle');
    assert.equal(afterForget.inodes, 0);
  });

  test('a renamed folder keeps the nodes below it working', () => {
    const src = folder('rename');
    mkdirSync(join(src, 'd1'));
    writeFileSync(join(src, 'd1', 'f'), 'abc');
    const d1 = statSync(join(src, 'd1')).ino;
    const f = statSync(join(src, 'd1', 'f')).ino;
    const dev = run(new PassthroughFs({ source: src }), [
      lookup(2, 1, 'd1'),
      lookup(4, d1, 'f'),
      () => request(Opcode.RENAME, hex(le64(1), cstr('d1'), cstr('d2')), { unique: 6, nodeid: 1 }),
      () => request(Opcode.GETATTR, hex(le32(0), le32(0), le64(0)), { unique: 8, nodeid: f }),
    ]);
    assert.equal(dev.replyTo(6).error, 0);
    assert.equal(dev.replyTo(8).error, 0);
    assert.equal(dev.replyTo(8).payload.readBigUInt64LE(16 + 8), 3n); // attr.size of d2/f
    assert.equal(readFileSync(join(src, 'd2', 'f'), 'utf8'), 'abc');
  });

  test('locks: another owner conflicts (EAGAIN), GETLK reports the holder, FLUSH releases and grants a waiting SETLKW', () => {
    const src = folder('locks');
    writeFileSync(join(src, 'db'), '');
    const ino = statSync(join(src, 'db')).ino;
    const dev = run(new PassthroughFs({ source: src }), [
      lookup(2, 1, 'db'),
      () => request(Opcode.SETLK, lkIn(0, 1, 1, 100, 200), { unique: 4, nodeid: ino }), // owner 1: write lock 100-200
      () => request(Opcode.SETLK, lkIn(0, 2, 0, 150, 150), { unique: 6, nodeid: ino }), // owner 2: read 150 → EAGAIN
      () => request(Opcode.GETLK, lkIn(0, 2, 1, 0, 0x7fffffffffffffffn), { unique: 8, nodeid: ino }),
      () => request(Opcode.SETLKW, lkIn(0, 2, 1, 150, 0x7fffffffffffffffn), { unique: 10, nodeid: ino }), // waits
      () => request(Opcode.FLUSH, hex(le64(0), le32(0), le32(0), le64(1)), { unique: 12, nodeid: ino }), // owner 1 closes
      () => request(Opcode.SETLK, lkIn(0, 1, 0, 160, 160), { unique: 14, nodeid: ino }), // now owner 2 holds it
    ]);
    assert.equal(dev.replyTo(4).error, 0);
    assert.equal(dev.replyTo(6).error, -Errno.EAGAIN);
    assert.equal(dev.replyTo(8).payload.toString('hex'), hex(le64(100), le64(200), le32(1), le32(101)).toString('hex'));
    const order = dev.replies.map((r) => r.unique);
    assert.ok(order.indexOf(10) > order.indexOf(8), 'SETLKW answered only after the FLUSH');
    assert.equal(dev.replyTo(10).error, 0);
    assert.equal(dev.replyTo(12).error, 0);
    assert.equal(dev.replyTo(14).error, -Errno.EAGAIN);
  });

  test('locks taken through a handle by an owner that never FLUSHes (OFD locks) end at RELEASE', () => {
    const src = folder('ofd');
    writeFileSync(join(src, 'db'), '');
    const ino = statSync(join(src, 'db')).ino;
    const fs = new PassthroughFs({ source: src });
    let fh = 0;
    const dev = run(fs, [
      lookup(2, 1, 'db'),
      () => request(Opcode.OPEN, hex(le32(2), le32(0)), { unique: 4, nodeid: ino }),
      (d) => {
        fh = Number(d.replyTo(4).payload.readBigUInt64LE(0));
        return request(Opcode.SETLK, lkIn(fh, 7, 1, 0, 10), { unique: 6, nodeid: ino }); // owner 7 = the open file
      },
      () => request(Opcode.SETLK, lkIn(fh, 3, 0, 20, 30), { unique: 8, nodeid: ino }), // owner 3 = the process
      () => request(Opcode.FLUSH, hex(le64(fh), le32(0), le32(0), le64(3)), { unique: 10, nodeid: ino }), // close(): process owner
      () => request(Opcode.GETLK, lkIn(0, 9, 1, 0, 0x7fffffffffffffffn), { unique: 12, nodeid: ino }),
      () => request(Opcode.RELEASE, hex(le64(fh), le32(2), le32(0), le64(0)), { unique: 14, nodeid: ino }),
      () => request(Opcode.GETLK, lkIn(0, 9, 1, 0, 0x7fffffffffffffffn), { unique: 16, nodeid: ino }),
    ]);
    assert.equal(dev.replyTo(6).error, 0);
    assert.equal(dev.replyTo(12).payload.readUInt32LE(16), 1, 'the OFD lock survives the process FLUSH');
    assert.equal(dev.replyTo(14).error, 0);
    assert.equal(dev.replyTo(16).payload.readUInt32LE(16), 2, 'and ends with the file (F_UNLCK)');
    assert.equal(fs.stats().lockedInodes, 0);
  });

  test('an F_SETLKW that would close a cycle of waiting owners fails with EDEADLK', () => {
    const src = folder('deadlock');
    writeFileSync(join(src, 'db'), '');
    const ino = statSync(join(src, 'db')).ino;
    const dev = run(new PassthroughFs({ source: src }), [
      lookup(2, 1, 'db'),
      () => request(Opcode.SETLK, lkIn(0, 1, 1, 0, 0), { unique: 4, nodeid: ino }), // owner 1 holds byte 0
      () => request(Opcode.SETLK, lkIn(0, 2, 1, 1, 1), { unique: 6, nodeid: ino }), // owner 2 holds byte 1
      () => request(Opcode.SETLKW, lkIn(0, 1, 1, 1, 1), { unique: 8, nodeid: ino }), // owner 1 waits for 2
      () => request(Opcode.SETLKW, lkIn(0, 2, 1, 0, 0), { unique: 10, nodeid: ino }), // 2 waiting for 1: a cycle
    ]);
    assert.equal(dev.hasReply(8), false, 'the first waiter still waits');
    assert.equal(dev.replyTo(10).error, -Errno.EDEADLK);
  });

  test('an interrupted SETLKW is answered EINTR and leaves no waiter', () => {
    const src = folder('intr');
    writeFileSync(join(src, 'db'), '');
    const ino = statSync(join(src, 'db')).ino;
    const fs = new PassthroughFs({ source: src });
    const dev = run(fs, [
      lookup(2, 1, 'db'),
      () => request(Opcode.SETLK, lkIn(0, 1, 1, 0, 0x7fffffffffffffffn), { unique: 4, nodeid: ino }),
      () => request(Opcode.SETLKW, lkIn(0, 2, 1, 0, 10), { unique: 6, nodeid: ino }),
      () => request(Opcode.INTERRUPT, hex(le64(6)), { unique: 8 }),
      () => request(Opcode.FLUSH, hex(le64(0), le32(0), le32(0), le64(1)), { unique: 10, nodeid: ino }),
    ]);
    assert.equal(dev.replyTo(6).error, -Errno.EINTR);
    assert.equal(dev.replies.filter((r) => r.unique === 6).length, 1);
    assert.equal(fs.stats().lockedInodes, 0);
  });

  test('fallocate mode 0 extends, other modes are EOPNOTSUPP; lseek DATA/HOLE treat the file as one extent', () => {
    const src = folder('falloc');
    writeFileSync(join(src, 'f'), 'abc');
    let fh = 0;
    const dev = run(new PassthroughFs({ source: src }), [
      lookup(2, 1, 'f'),
      (d) => request(Opcode.OPEN, hex(le32(2), le32(0)), { unique: 4, nodeid: Number(d.replyTo(2).payload.readBigUInt64LE(0)) }),
      (d) => {
        fh = Number(d.replyTo(4).payload.readBigUInt64LE(0));
        return request(Opcode.FALLOCATE, hex(le64(fh), le64(0), le64(4096), le32(0), le32(0)), { unique: 6 });
      },
      () => request(Opcode.FALLOCATE, hex(le64(fh), le64(0), le64(10), le32(3), le32(0)), { unique: 8 }),
      () => request(Opcode.LSEEK, hex(le64(fh), le64(10), le32(3), le32(0)), { unique: 10 }),
      () => request(Opcode.LSEEK, hex(le64(fh), le64(10), le32(4), le32(0)), { unique: 12 }),
      () => request(Opcode.LSEEK, hex(le64(fh), le64(5000), le32(3), le32(0)), { unique: 14 }),
      () => request(Opcode.RELEASE, hex(le64(fh), le32(0), le32(0), le64(0)), { unique: 16 }),
    ]);
    assert.equal(dev.replyTo(6).error, 0);
    assert.equal(statSync(join(src, 'f')).size, 4096);
    assert.equal(dev.replyTo(8).error, -Errno.EOPNOTSUPP);
    assert.equal(dev.replyTo(10).payload.readBigUInt64LE(0), 10n);
    assert.equal(dev.replyTo(12).payload.readBigUInt64LE(0), 4096n);
    assert.equal(dev.replyTo(14).error, -Errno.ENXIO);
  });

  test('an inode stays itself: getattr after unlink, reads through a hard link after the first name is reused', () => {
    const src = folder('identity');
    writeFileSync(join(src, 'a'), 'original');
    const ino = statSync(join(src, 'a')).ino;
    let fh = 0;
    const dev = run(new PassthroughFs({ source: src }), [
      lookup(2, 1, 'a'),
      () => request(Opcode.LINK, hex(le64(ino), cstr('b')), { unique: 4, nodeid: 1 }),
      () => request(Opcode.UNLINK, hex(cstr('a')), { unique: 6, nodeid: 1 }),
      () => request(Opcode.CREATE, hex(le32(0o101), le32(0o100644), le32(0), le32(0), cstr('a')), { unique: 8, nodeid: 1 }),
      () => request(Opcode.UNLINK, hex(cstr('b')), { unique: 10, nodeid: 1 }),
      () => request(Opcode.GETATTR, hex(le32(0), le32(0), le64(0)), { unique: 12, nodeid: ino }),
      () => request(Opcode.OPEN, hex(le32(0), le32(0)), { unique: 14, nodeid: ino }),
      (d) => {
        fh = Number(d.replyTo(14).payload.readBigUInt64LE(0));
        return request(Opcode.READ, hex(le64(fh), le64(0), le32(100), le32(0), le64(0), le32(0), le32(0)), { unique: 16, nodeid: ino });
      },
    ]);
    for (const u of [4, 6, 8, 10, 12, 14]) assert.equal(dev.replyTo(u).error, 0, `unique ${u}`);
    const attr = dev.replyTo(12).payload;
    assert.equal(attr.readBigUInt64LE(16 + 8), 8n, 'size of the unlinked original');
    assert.equal(attr.readUInt32LE(16 + 64), 0, 'nlink 0');
    assert.equal(dev.replyTo(16).payload.toString(), 'original');
  });

  test('a folder removed while the kernel holds it and made again is a new inode that accepts files', () => {
    const src = folder('remade');
    const entryId = (d: ScriptedDevice, u: number): number => Number(d.replyTo(u).payload.readBigUInt64LE(0));
    const dev = run(new PassthroughFs({ source: src }), [
      () => request(Opcode.MKDIR, hex(le32(0o755), le32(0), cstr('x')), { unique: 2, nodeid: 1 }),
      () => request(Opcode.RMDIR, hex(cstr('x')), { unique: 4, nodeid: 1 }),
      () => request(Opcode.MKDIR, hex(le32(0o755), le32(0), cstr('x')), { unique: 6, nodeid: 1 }),
      (d) => request(Opcode.CREATE, hex(le32(0o101), le32(0o100644), le32(0), le32(0), cstr('f')), { unique: 8, nodeid: entryId(d, 6) }),
    ]);
    assert.notEqual(entryId(dev, 2), entryId(dev, 6));
    assert.equal(dev.replyTo(8).error, 0);
    assert.equal(statSync(join(src, 'x', 'f')).isFile(), true);
  });

  test('names with a slash are refused', () => {
    const src = folder('names');
    const dev = run(new PassthroughFs({ source: src }), [lookup(2, 1, '../etc')]);
    assert.equal(dev.replyTo(2).error, -Errno.EINVAL);
  });
});

