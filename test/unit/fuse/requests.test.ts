/**
 * Every opcode's request layout against include/uapi/linux/fuse.h, from
 * hand-written bytes. Each test builds the argument struct field by field in
 * the header's order and checks the decoded fields.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Opcode } from '../../../src/fuse/abi.js';
import { FuseDecodeError } from '../../../src/fuse/errors.js';
import { OTHER_OPCODE, RequestDecoder, type FuseRequest } from '../../../src/fuse/requests.js';
import { cstr, hex, le32, le64, request } from './bytes.js';

function decode(buf: Buffer, d = new RequestDecoder()): FuseRequest {
  return d.decode(buf, buf.length);
}

/** Decodes and returns the request as a plain record for field checks. */
function fields(buf: Buffer, d?: RequestDecoder): Record<string, unknown> {
  return decode(buf, d) as unknown as Record<string, unknown>;
}

const FH = 0x0000_0102_0304_0506;
const OWNER = 0x8877665544332211n;

describe('fuse_in_header', () => {
  test('decodes every header field', () => {
    const r = decode(request(Opcode.GETATTR, hex(le32(0), le32(0), le64(0)), { unique: 0x1_0000_0002, nodeid: 0x2_0000_0003 }));
    assert.deepEqual({ ...r.header }, {
      len: 56, opcode: Opcode.GETATTR, unique: 0x1_0000_0002, nodeid: 0x2_0000_0003, uid: 1000, gid: 1001, pid: 4242, totalExtlen: 0,
    });
  });
  test('rejects fewer than 40 bytes, a length mismatch, and extensions past the end', () => {
    const d = new RequestDecoder();
    assert.throws(() => d.decode(Buffer.alloc(39), 39), FuseDecodeError);
    const b = request(Opcode.STATFS, Buffer.alloc(0));
    b.writeUInt32LE(41, 0);
    assert.throws(() => d.decode(b, 40), FuseDecodeError);
    assert.throws(() => decode(request(Opcode.STATFS, Buffer.alloc(0), { extlen: 1 })), FuseDecodeError);
  });
  test('header extensions are excluded from the arguments', () => {
    const r = fields(request(Opcode.LOOKUP, hex(cstr('a'), '00'.repeat(6), le32(8), le32(0)), { extlen: 1 }));
    assert.equal(r.name, 'a');
  });
});

describe('requests by opcode', () => {
  test('LOOKUP (1): name', () => {
    assert.deepEqual(pick(fields(request(Opcode.LOOKUP, hex(cstr('x.db')))), 'opcode', 'name'), { opcode: 1, name: 'x.db' });
  });
  test('FORGET (2): fuse_forget_in {nlookup u64}', () => {
    assert.equal(fields(request(Opcode.FORGET, hex(le64(3)))).nlookup, 3);
  });
  test('GETATTR (3): fuse_getattr_in {getattr_flags, dummy, fh}', () => {
    assert.deepEqual(pick(fields(request(Opcode.GETATTR, hex(le32(1), le32(0), le64(FH)))), 'getattrFlags', 'fh'), { getattrFlags: 1, fh: FH });
  });
  test('SETATTR (4): fuse_setattr_in (88 bytes)', () => {
    const args = hex(
      le32(0x3f), le32(0), // valid, padding
      le64(FH), le64(4096), le64(OWNER), // fh, size, lock_owner
      le64(100), le64(200), le64(300), // atime, mtime, ctime
      le32(1), le32(2), le32(3), // atimensec, mtimensec, ctimensec
      le32(0o100644), le32(0), // mode, unused4
      le32(10), le32(20), le32(0), // uid, gid, unused5
    );
    assert.equal(args.length, 88);
    assert.deepEqual(
      pick(fields(request(Opcode.SETATTR, args)), 'valid', 'fh', 'size', 'lockOwner', 'atime', 'mtime', 'ctime', 'atimeNsec', 'mtimeNsec', 'ctimeNsec', 'mode', 'uid', 'gid'),
      { valid: 0x3f, fh: FH, size: 4096, lockOwner: OWNER, atime: 100, mtime: 200, ctime: 300, atimeNsec: 1, mtimeNsec: 2, ctimeNsec: 3, mode: 0o100644, uid: 10, gid: 20 },
    );
  });
  test('READLINK (5): no arguments', () => {
    assert.equal(decode(request(Opcode.READLINK, Buffer.alloc(0))).opcode, Opcode.READLINK);
  });
  test('SYMLINK (6): name then target', () => {
    assert.deepEqual(pick(fields(request(Opcode.SYMLINK, hex(cstr('link'), cstr('/target/path')))), 'name', 'target'), { name: 'link', target: '/target/path' });
  });
  test('MKNOD (8): fuse_mknod_in {mode, rdev, umask, padding} + name', () => {
    assert.deepEqual(pick(fields(request(Opcode.MKNOD, hex(le32(0o100600), le32(5), le32(0o22), le32(0), cstr('n')))), 'mode', 'rdev', 'umask', 'name'), {
      mode: 0o100600, rdev: 5, umask: 0o22, name: 'n',
    });
  });
  test('MKDIR (9): fuse_mkdir_in {mode, umask} + name', () => {
    assert.deepEqual(pick(fields(request(Opcode.MKDIR, hex(le32(0o755), le32(0o22), cstr('d')))), 'mode', 'umask', 'name'), { mode: 0o755, umask: 0o22, name: 'd' });
  });
  test('UNLINK (10) and RMDIR (11): name', () => {
    assert.equal(fields(request(Opcode.UNLINK, hex(cstr('f')))).name, 'f');
    assert.equal(fields(request(Opcode.RMDIR, hex(cstr('d')))).name, 'd');
  });
  test('RENAME (12): fuse_rename_in {newdir} + old + new', () => {
    assert.deepEqual(pick(fields(request(Opcode.RENAME, hex(le64(9), cstr('a'), cstr('b')))), 'opcode', 'newdir', 'flags', 'name', 'newName'), {
      opcode: Opcode.RENAME, newdir: 9, flags: 0, name: 'a', newName: 'b',
    });
  });
  test('RENAME2 (45): fuse_rename2_in {newdir, flags, padding} + old + new', () => {
    assert.deepEqual(pick(fields(request(Opcode.RENAME2, hex(le64(9), le32(1), le32(0), cstr('a'), cstr('b')))), 'opcode', 'newdir', 'flags', 'name', 'newName'), {
      opcode: Opcode.RENAME2, newdir: 9, flags: 1, name: 'a', newName: 'b',
    });
  });
  test('LINK (13): fuse_link_in {oldnodeid} + name', () => {
    assert.deepEqual(pick(fields(request(Opcode.LINK, hex(le64(77), cstr('h')))), 'oldNodeid', 'newName'), { oldNodeid: 77, newName: 'h' });
  });
  test('OPEN (14) and OPENDIR (27): fuse_open_in {flags, open_flags}', () => {
    assert.deepEqual(pick(fields(request(Opcode.OPEN, hex(le32(0o2), le32(1)))), 'opcode', 'flags', 'openFlags'), { opcode: Opcode.OPEN, flags: 2, openFlags: 1 });
    assert.deepEqual(pick(fields(request(Opcode.OPENDIR, hex(le32(0o200000), le32(0)))), 'opcode', 'flags'), { opcode: Opcode.OPENDIR, flags: 0o200000 });
  });
  for (const op of [Opcode.READ, Opcode.READDIR, Opcode.READDIRPLUS]) {
    test(`${op === Opcode.READ ? 'READ (15)' : op === Opcode.READDIR ? 'READDIR (28)' : 'READDIRPLUS (44)'}: fuse_read_in {fh, offset, size, read_flags, lock_owner, flags, padding}`, () => {
      const args = hex(le64(FH), le64(8192), le32(4096), le32(2), le64(OWNER), le32(0o2), le32(0));
      assert.equal(args.length, 40);
      assert.deepEqual(pick(fields(request(op, args)), 'opcode', 'fh', 'offset', 'size', 'readFlags', 'lockOwner', 'flags'), {
        opcode: op, fh: FH, offset: 8192, size: 4096, readFlags: 2, lockOwner: OWNER, flags: 2,
      });
    });
  }
  test('WRITE (16): fuse_write_in + data (a view, not a copy)', () => {
    const buf = request(Opcode.WRITE, hex(le64(FH), le64(4096), le32(3), le32(1), le64(OWNER), le32(2), le32(0), 'aabbcc'));
    const r = decode(buf) as unknown as { fh: number; offset: number; size: number; writeFlags: number; lockOwner: bigint; flags: number; data: Buffer };
    assert.deepEqual([r.fh, r.offset, r.size, r.writeFlags, r.lockOwner, r.flags], [FH, 4096, 3, 1, OWNER, 2]);
    assert.equal(r.data.toString('hex'), 'aabbcc');
    assert.equal(r.data.buffer, buf.buffer);
  });
  test('WRITE whose size exceeds the bytes carried is rejected', () => {
    assert.throws(() => decode(request(Opcode.WRITE, hex(le64(1), le64(0), le32(4), le32(0), le64(0), le32(0), le32(0), 'aabbcc'))), FuseDecodeError);
  });
  test('STATFS (17): no arguments', () => {
    assert.equal(decode(request(Opcode.STATFS, Buffer.alloc(0))).opcode, Opcode.STATFS);
  });
  for (const op of [Opcode.RELEASE, Opcode.RELEASEDIR]) {
    test(`${op === Opcode.RELEASE ? 'RELEASE (18)' : 'RELEASEDIR (29)'}: fuse_release_in {fh, flags, release_flags, lock_owner}`, () => {
      assert.deepEqual(pick(fields(request(op, hex(le64(FH), le32(0o2), le32(2), le64(OWNER)))), 'opcode', 'fh', 'flags', 'releaseFlags', 'lockOwner'), {
        opcode: op, fh: FH, flags: 2, releaseFlags: 2, lockOwner: OWNER,
      });
    });
  }
  for (const op of [Opcode.FSYNC, Opcode.FSYNCDIR]) {
    test(`${op === Opcode.FSYNC ? 'FSYNC (20)' : 'FSYNCDIR (30)'}: fuse_fsync_in {fh, fsync_flags, padding}`, () => {
      assert.deepEqual(pick(fields(request(op, hex(le64(FH), le32(1), le32(0)))), 'opcode', 'fh', 'fsyncFlags'), { opcode: op, fh: FH, fsyncFlags: 1 });
    });
  }
  test('SETXATTR (21): fuse_setxattr_in (8 bytes without SETXATTR_EXT) + name + value', () => {
    const r = decode(request(Opcode.SETXATTR, hex(le32(2), le32(1), cstr('user.k'), 'beef'))) as unknown as { flags: number; name: string; value: Buffer };
    assert.deepEqual([r.flags, r.name, r.value.toString('hex')], [1, 'user.k', 'beef']);
  });
  test('SETXATTR with SETXATTR_EXT: 16-byte fuse_setxattr_in', () => {
    const d = new RequestDecoder();
    d.setxattrExt = true;
    const r = d.decode(...withLen(request(Opcode.SETXATTR, hex(le32(1), le32(2), le32(1), le32(0), cstr('user.k'), 'ff')))) as unknown as {
      flags: number; setxattrFlags: number; name: string; value: Buffer;
    };
    assert.deepEqual([r.flags, r.setxattrFlags, r.name, r.value.toString('hex')], [2, 1, 'user.k', 'ff']);
  });
  test('GETXATTR (22): fuse_getxattr_in {size, padding} + name', () => {
    assert.deepEqual(pick(fields(request(Opcode.GETXATTR, hex(le32(64), le32(0), cstr('user.k')))), 'size', 'name'), { size: 64, name: 'user.k' });
  });
  test('LISTXATTR (23): fuse_getxattr_in {size, padding}', () => {
    assert.equal(fields(request(Opcode.LISTXATTR, hex(le32(128), le32(0)))).size, 128);
  });
  test('REMOVEXATTR (24): name', () => {
    assert.equal(fields(request(Opcode.REMOVEXATTR, hex(cstr('user.k')))).name, 'user.k');
  });
  test('FLUSH (25): fuse_flush_in {fh, unused, padding, lock_owner}', () => {
    assert.deepEqual(pick(fields(request(Opcode.FLUSH, hex(le64(FH), le32(0), le32(0), le64(OWNER)))), 'fh', 'lockOwner'), { fh: FH, lockOwner: OWNER });
  });
  test('INIT (26): fuse_init_in {major, minor, max_readahead, flags, flags2, unused[11]}', () => {
    const args = hex(le32(7), le32(45), le32(131072), le32(0x73fffffb), le32(0x1f), '00'.repeat(44));
    assert.equal(args.length, 64);
    assert.deepEqual(pick(fields(request(Opcode.INIT, args)), 'major', 'minor', 'maxReadahead', 'flags', 'flags2'), {
      major: 7, minor: 45, maxReadahead: 131072, flags: 0x73fffffb, flags2: 0x1f,
    });
  });
  test('INIT from an old kernel (16 bytes, no INIT_EXT): flags2 is 0', () => {
    assert.equal(fields(request(Opcode.INIT, hex(le32(7), le32(31), le32(0), le32(0x2)))).flags2, 0);
  });
  for (const op of [Opcode.GETLK, Opcode.SETLK, Opcode.SETLKW]) {
    test(`${op === Opcode.GETLK ? 'GETLK (31)' : op === Opcode.SETLK ? 'SETLK (32)' : 'SETLKW (33)'}: fuse_lk_in {fh, owner, lk {start, end, type, pid}, lk_flags, padding}`, () => {
      const args = hex(le64(FH), le64(OWNER), le64(0x40000000), le64(0x40000001), le32(1), le32(99), le32(0), le32(0));
      assert.equal(args.length, 48);
      assert.deepEqual(pick(fields(request(op, args)), 'opcode', 'fh', 'owner', 'start', 'end', 'type', 'pid', 'lkFlags'), {
        opcode: op, fh: FH, owner: OWNER, start: 0x40000000, end: 0x40000001, type: 1, pid: 99, lkFlags: 0,
      });
    });
  }
  test('lock end OFFSET_MAX (to end of file) decodes as Infinity', () => {
    const r = fields(request(Opcode.SETLK, hex(le64(1), le64(2), le64(0), le64(0x7fffffffffffffffn), le32(2), le32(1), le32(0), le32(0))));
    assert.equal(r.end, Infinity);
  });
  test('ACCESS (34): fuse_access_in {mask, padding}', () => {
    assert.equal(fields(request(Opcode.ACCESS, hex(le32(4), le32(0)))).mask, 4);
  });
  test('CREATE (35): fuse_create_in {flags, mode, umask, open_flags} + name', () => {
    assert.deepEqual(pick(fields(request(Opcode.CREATE, hex(le32(0o102), le32(0o100644), le32(0o22), le32(0), cstr('new.db')))), 'opcode', 'flags', 'mode', 'umask', 'openFlags', 'name'), {
      opcode: Opcode.CREATE, flags: 0o102, mode: 0o100644, umask: 0o22, openFlags: 0, name: 'new.db',
    });
  });
  test('INTERRUPT (36): fuse_interrupt_in {unique}', () => {
    assert.equal(fields(request(Opcode.INTERRUPT, hex(le64(0x1234)))).interruptedUnique, 0x1234);
  });
  test('BMAP (37): fuse_bmap_in {block, blocksize, padding}', () => {
    assert.deepEqual(pick(fields(request(Opcode.BMAP, hex(le64(12), le32(4096), le32(0)))), 'block', 'blocksize'), { block: 12, blocksize: 4096 });
  });
  test('DESTROY (38): no arguments', () => {
    assert.equal(decode(request(Opcode.DESTROY, Buffer.alloc(0))).opcode, Opcode.DESTROY);
  });
  test('IOCTL (39): fuse_ioctl_in {fh, flags, cmd, arg, in_size, out_size} + input', () => {
    const r = decode(request(Opcode.IOCTL, hex(le64(FH), le32(4), le32(0x5401), le64(0xdead), le32(2), le32(8), 'abcd'))) as unknown as {
      fh: number; flags: number; cmd: number; arg: bigint; inSize: number; outSize: number; data: Buffer;
    };
    assert.deepEqual([r.fh, r.flags, r.cmd, r.arg, r.inSize, r.outSize, r.data.toString('hex')], [FH, 4, 0x5401, 0xdeadn, 2, 8, 'abcd']);
  });
  test('POLL (40): fuse_poll_in {fh, kh, flags, events}', () => {
    assert.deepEqual(pick(fields(request(Opcode.POLL, hex(le64(FH), le64(5), le32(1), le32(0x19)))), 'fh', 'kh', 'flags', 'events'), { fh: FH, kh: 5n, flags: 1, events: 0x19 });
  });
  test('NOTIFY_REPLY (41): fuse_notify_retrieve_in {dummy1, offset, size, dummy2, dummy3, dummy4} + data', () => {
    const r = decode(request(Opcode.NOTIFY_REPLY, hex(le64(0), le64(4096), le32(2), le32(0), le64(0), le64(0), '0102'))) as unknown as { offset: number; size: number; data: Buffer };
    assert.deepEqual([r.offset, r.size, r.data.toString('hex')], [4096, 2, '0102']);
  });
  test('BATCH_FORGET (42): fuse_batch_forget_in {count, dummy} + count × fuse_forget_one {nodeid, nlookup}', () => {
    const r = decode(request(Opcode.BATCH_FORGET, hex(le32(2), le32(0), le64(10), le64(1), le64(11), le64(3)))) as unknown as { count: number; nodeids: number[]; nlookups: number[] };
    assert.equal(r.count, 2);
    assert.deepEqual([r.nodeids.slice(0, 2), r.nlookups.slice(0, 2)], [[10, 11], [1, 3]]);
  });
  test('BATCH_FORGET whose count exceeds the entries carried is rejected', () => {
    assert.throws(() => decode(request(Opcode.BATCH_FORGET, hex(le32(3), le32(0), le64(10), le64(1)))), FuseDecodeError);
  });
  test('FALLOCATE (43): fuse_fallocate_in {fh, offset, length, mode, padding}', () => {
    assert.deepEqual(pick(fields(request(Opcode.FALLOCATE, hex(le64(FH), le64(100), le64(200), le32(1), le32(0)))), 'fh', 'offset', 'length', 'mode'), { fh: FH, offset: 100, length: 200, mode: 1 });
  });
  test('LSEEK (46): fuse_lseek_in {fh, offset, whence, padding}', () => {
    assert.deepEqual(pick(fields(request(Opcode.LSEEK, hex(le64(FH), le64(512), le32(3), le32(0)))), 'fh', 'offset', 'whence'), { fh: FH, offset: 512, whence: 3 });
  });
  test('COPY_FILE_RANGE (47): fuse_copy_file_range_in {fh_in, off_in, nodeid_out, fh_out, off_out, len, flags}', () => {
    assert.deepEqual(
      pick(fields(request(Opcode.COPY_FILE_RANGE, hex(le64(1), le64(2), le64(3), le64(4), le64(5), le64(6), le64(0)))), 'fhIn', 'offIn', 'nodeidOut', 'fhOut', 'offOut', 'len', 'flags'),
      { fhIn: 1, offIn: 2, nodeidOut: 3, fhOut: 4, offOut: 5, len: 6, flags: 0 },
    );
  });
  test('SYNCFS (50): fuse_syncfs_in {padding}', () => {
    assert.equal(decode(request(Opcode.SYNCFS, hex(le64(0)))).opcode, Opcode.SYNCFS);
  });
  test('TMPFILE (51): fuse_create_in + name', () => {
    assert.deepEqual(pick(fields(request(Opcode.TMPFILE, hex(le32(2), le32(0o100600), le32(0), le32(0), cstr('t')))), 'opcode', 'mode', 'name'), { opcode: Opcode.TMPFILE, mode: 0o100600, name: 't' });
  });
  test('STATX (52): fuse_statx_in {getattr_flags, reserved, fh, sx_flags, sx_mask}', () => {
    assert.deepEqual(pick(fields(request(Opcode.STATX, hex(le32(1), le32(0), le64(FH), le32(0x800), le32(0xfff)))), 'getattrFlags', 'fh', 'sxFlags', 'sxMask'), {
      getattrFlags: 1, fh: FH, sxFlags: 0x800, sxMask: 0xfff,
    });
  });
  test('SETUPMAPPING (48), REMOVEMAPPING (49), CUSE_INIT and unknown opcodes decode as header-only requests', () => {
    for (const op of [Opcode.SETUPMAPPING, Opcode.REMOVEMAPPING, Opcode.CUSE_INIT, 7, 19, 999]) {
      const r = decode(request(op, Buffer.alloc(8)));
      assert.equal(r.opcode, OTHER_OPCODE);
      assert.equal(r.header.opcode, op);
    }
  });
  test('names must be NUL-terminated inside the request', () => {
    assert.throws(() => decode(request(Opcode.LOOKUP, Buffer.from('abc'))), FuseDecodeError);
    assert.throws(() => decode(request(Opcode.SYMLINK, hex(cstr('a')))), FuseDecodeError);
  });
  test('truncated fixed-size arguments are rejected for every opcode that has them', () => {
    const sized: [number, number][] = [
      [Opcode.FORGET, 8], [Opcode.GETATTR, 16], [Opcode.SETATTR, 88], [Opcode.MKNOD, 16], [Opcode.MKDIR, 8], [Opcode.RENAME, 8],
      [Opcode.LINK, 8], [Opcode.OPEN, 8], [Opcode.READ, 40], [Opcode.WRITE, 40], [Opcode.RELEASE, 24], [Opcode.FSYNC, 16],
      [Opcode.SETXATTR, 8], [Opcode.GETXATTR, 8], [Opcode.LISTXATTR, 8], [Opcode.FLUSH, 24], [Opcode.INIT, 16], [Opcode.OPENDIR, 8],
      [Opcode.READDIR, 40], [Opcode.RELEASEDIR, 24], [Opcode.FSYNCDIR, 16], [Opcode.GETLK, 48], [Opcode.SETLK, 48], [Opcode.SETLKW, 48],
      [Opcode.ACCESS, 8], [Opcode.CREATE, 16], [Opcode.INTERRUPT, 8], [Opcode.BMAP, 16], [Opcode.IOCTL, 32], [Opcode.POLL, 24],
      [Opcode.NOTIFY_REPLY, 40], [Opcode.BATCH_FORGET, 8], [Opcode.FALLOCATE, 32], [Opcode.READDIRPLUS, 40], [Opcode.RENAME2, 16],
      [Opcode.LSEEK, 24], [Opcode.COPY_FILE_RANGE, 56], [Opcode.SYNCFS, 8], [Opcode.STATX, 24],
    ];
    for (const [op, size] of sized) {
      assert.throws(() => decode(request(op, Buffer.alloc(size - 1))), FuseDecodeError, `opcode ${op}`);
    }
  });
  test('a reused decoder overwrites the previous request in place', () => {
    const d = new RequestDecoder();
    const a = d.decode(...withLen(request(Opcode.LOOKUP, hex(cstr('first')))));
    const b = d.decode(...withLen(request(Opcode.LOOKUP, hex(cstr('second')))));
    assert.equal(a, b);
    assert.equal((b as unknown as { name: string }).name, 'second');
  });
});

function withLen(b: Buffer): [Buffer, number] {
  return [b, b.length];
}

function pick(o: Record<string, unknown>, ...keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, o[k]]));
}
