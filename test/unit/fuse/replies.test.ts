/**
 * Reply and notification layouts against include/uapi/linux/fuse.h: each
 * encoder's bytes are compared with the struct written out field by field.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DirentWriter,
  encodeAttrOut,
  encodeEntryOut,
  encodeGetxattrOut,
  encodeInitOut,
  encodeIoctlOut,
  encodeLkOut,
  encodeOpenOut,
  encodeOutHeader,
  encodePollOut,
  encodeStatfsOut,
  encodeU64Out,
  encodeWriteOut,
  newEntryOut,
  type Attr,
} from '../../../src/fuse/replies.js';
import { encodeDelete, encodeInvalEntry, encodeInvalInode, encodePollWakeup, encodeRetrieve, encodeStore } from '../../../src/fuse/notify.js';
import { cstr, hex, le16, le32, le64 } from './bytes.js';

const ATTR: Attr = {
  ino: 0x1_0000_0002, size: 8192, blocks: 16, atime: 1700000000, atimeNsec: 1, mtime: 1700000001, mtimeNsec: 2,
  ctime: 1700000002, ctimeNsec: 3, mode: 0o100644, nlink: 1, uid: 1000, gid: 1001, rdev: 0, blksize: 4096, flags: 0,
};
/** struct fuse_attr for ATTR, field by field. */
const ATTR_HEX = [
  le64(0x1_0000_0002), le64(8192), le64(16), // ino, size, blocks
  le64(1700000000), le64(1700000001), le64(1700000002), // atime, mtime, ctime
  le32(1), le32(2), le32(3), // atimensec, mtimensec, ctimensec
  le32(0o100644), le32(1), le32(1000), le32(1001), le32(0), le32(4096), le32(0), // mode, nlink, uid, gid, rdev, blksize, flags
].join('');

function encoded(fn: (buf: Buffer) => number): string {
  const buf = Buffer.alloc(512, 0xee);
  const n = fn(buf);
  return buf.subarray(0, n).toString('hex');
}

describe('reply encoders', () => {
  test('fuse_out_header {len, error, unique}', () => {
    assert.equal(encoded((b) => (encodeOutHeader(b, 0, 16, -2, 0x1234), 16)), hex(le32(16), le32(-2 >>> 0), le64(0x1234)).toString('hex'));
  });
  test('fuse_entry_out {nodeid, generation, entry_valid, attr_valid, entry_valid_nsec, attr_valid_nsec, attr} (128 bytes)', () => {
    const e = newEntryOut();
    Object.assign(e, { nodeid: 0x1_0000_0002, generation: 5, entryValid: 1.5, attrValid: 2 });
    Object.assign(e.attr, ATTR);
    const expected = hex(le64(0x1_0000_0002), le64(5), le64(1), le64(2), le32(500_000_000), le32(0), ATTR_HEX);
    assert.equal(expected.length, 128);
    assert.equal(encoded((b) => encodeEntryOut(b, 0, e)), expected.toString('hex'));
  });
  test('negative entry: nodeid 0 with an entry timeout', () => {
    const e = newEntryOut();
    e.entryValid = 3;
    assert.equal(encoded((b) => encodeEntryOut(b, 0, e)).slice(0, 64), hex(le64(0), le64(0), le64(3), le64(0)).toString('hex'));
  });
  test('fuse_attr_out {attr_valid, attr_valid_nsec, dummy, attr} (104 bytes)', () => {
    const expected = hex(le64(0), le32(250_000_000), le32(0), ATTR_HEX);
    assert.equal(expected.length, 104);
    assert.equal(encoded((b) => encodeAttrOut(b, 0, { attrValid: 0.25, attr: ATTR })), expected.toString('hex'));
  });
  test('fuse_open_out {fh, open_flags, padding}', () => {
    assert.equal(encoded((b) => encodeOpenOut(b, 0, { fh: 42, openFlags: 2 })), hex(le64(42), le32(2), le32(0)).toString('hex'));
  });
  test('fuse_write_out {size, padding}', () => {
    assert.equal(encoded((b) => encodeWriteOut(b, 0, 4096)), hex(le32(4096), le32(0)).toString('hex'));
  });
  test('fuse_statfs_out = fuse_kstatfs {blocks, bfree, bavail, files, ffree, bsize, namelen, frsize, padding, spare[6]} (80 bytes)', () => {
    const expected = hex(le64(1000), le64(500), le64(400), le64(100), le64(50), le32(4096), le32(255), le32(4096), le32(0), '00'.repeat(24));
    assert.equal(expected.length, 80);
    assert.equal(
      encoded((b) => encodeStatfsOut(b, 0, { blocks: 1000, bfree: 500, bavail: 400, files: 100, ffree: 50, bsize: 4096, namelen: 255, frsize: 4096 })),
      expected.toString('hex'),
    );
  });
  test('fuse_getxattr_out {size, padding}', () => {
    assert.equal(encoded((b) => encodeGetxattrOut(b, 0, 17)), hex(le32(17), le32(0)).toString('hex'));
  });
  test('fuse_lk_out = fuse_file_lock {start, end, type, pid}; Infinity → OFFSET_MAX', () => {
    assert.equal(encoded((b) => encodeLkOut(b, 0, { start: 0x40000000, end: Infinity, type: 1, pid: 77 })), hex(le64(0x40000000), le64(0x7fffffffffffffffn), le32(1), le32(77)).toString('hex'));
  });
  test('fuse_init_out {major, minor, max_readahead, flags, max_background, congestion_threshold, max_write, time_gran, max_pages, map_alignment, flags2, unused[7]} (64 bytes)', () => {
    const expected = hex(le32(7), le32(38), le32(131072), le32(0x244602a), le16(12), le16(9), le32(1 << 20), le32(1), le16(256), le16(0), le32(0), '00'.repeat(28));
    assert.equal(expected.length, 64);
    assert.equal(
      encoded((b) =>
        encodeInitOut(b, 0, {
          major: 7, minor: 38, maxReadahead: 131072, flags: 0x244602a, maxBackground: 12, congestionThreshold: 9,
          maxWrite: 1 << 20, timeGran: 1, maxPages: 256, mapAlignment: 0, flags2: 0,
        })),
      expected.toString('hex'),
    );
  });
  test('fuse_bmap_out / fuse_lseek_out {u64}', () => {
    assert.equal(encoded((b) => encodeU64Out(b, 0, 2 ** 40)), le64(2 ** 40));
  });
  test('fuse_poll_out {revents, padding}', () => {
    assert.equal(encoded((b) => encodePollOut(b, 0, 5)), hex(le32(5), le32(0)).toString('hex'));
  });
  test('fuse_ioctl_out {result, flags, in_iovs, out_iovs}', () => {
    assert.equal(encoded((b) => encodeIoctlOut(b, 0, -1, 4)), hex(le32(-1 >>> 0), le32(4), le32(0), le32(0)).toString('hex'));
  });
});

describe('directory entries', () => {
  test('fuse_dirent {ino, off, namelen, type, name} padded to 8 bytes', () => {
    const buf = Buffer.alloc(4096, 0xee);
    const w = new DirentWriter();
    w.reset(buf, 16, 4096, false);
    assert.ok(w.add(5, 'abc', 8, 1));
    assert.ok(w.add(6, 'longer-name', 4, 2));
    const expected = hex(
      le64(5), le64(1), le32(3), le32(8), Buffer.from('abc').toString('hex'), '00'.repeat(5), // 24 + 3 → 32
      le64(6), le64(2), le32(11), le32(4), Buffer.from('longer-name').toString('hex'), '00'.repeat(5), // 24 + 11 → 40
    );
    assert.equal(w.length, 72);
    assert.equal(buf.subarray(16, 16 + w.length).toString('hex'), expected.toString('hex'));
  });
  test('fuse_direntplus {entry_out, dirent}', () => {
    const buf = Buffer.alloc(4096);
    const w = new DirentWriter();
    w.reset(buf, 0, 4096, true);
    const e = w.nextEntry();
    Object.assign(e, { nodeid: 0x1_0000_0002, generation: 0, entryValid: 1, attrValid: 1 });
    Object.assign(e.attr, ATTR);
    assert.ok(w.addPlus(e, 'x.db', 8, 3));
    const expected = hex(
      le64(0x1_0000_0002), le64(0), le64(1), le64(1), le32(0), le32(0), ATTR_HEX,
      le64(0x1_0000_0002), le64(3), le32(4), le32(8), Buffer.from('x.db').toString('hex'), '00'.repeat(4),
    );
    assert.equal(w.length, 128 + 32);
    assert.equal(buf.subarray(0, w.length).toString('hex'), expected.toString('hex'));
  });
  test('an entry that does not fit the requested size is refused', () => {
    const buf = Buffer.alloc(4096);
    const w = new DirentWriter();
    w.reset(buf, 0, 40, false);
    assert.ok(w.add(1, 'a', 8, 1)); // 32 bytes
    assert.equal(w.add(2, 'b', 8, 2), false);
    assert.equal(w.length, 32);
  });
});

describe('notifications (unique 0, error = notify code)', () => {
  test('NOTIFY_INVAL_INODE (2): fuse_notify_inval_inode_out {ino, off, len}', () => {
    assert.equal(encoded((b) => encodeInvalInode(b, 9, 4096, 8192)), hex(le32(40), le32(2), le64(0), le64(9), le64(4096), le64(8192)).toString('hex'));
    assert.equal(encoded((b) => encodeInvalInode(b, 9, -1, 0)), hex(le32(40), le32(2), le64(0), le64(9), 'ff'.repeat(8), le64(0)).toString('hex'));
  });
  test('NOTIFY_INVAL_ENTRY (3): fuse_notify_inval_entry_out {parent, namelen, flags} + name + NUL', () => {
    assert.equal(encoded((b) => encodeInvalEntry(b, 1, 'db')), hex(le32(35), le32(3), le64(0), le64(1), le32(2), le32(0), cstr('db')).toString('hex'));
  });
  test('NOTIFY_DELETE (6): fuse_notify_delete_out {parent, child, namelen, padding} + name + NUL', () => {
    assert.equal(encoded((b) => encodeDelete(b, 1, 77, 'db-wal')), hex(le32(47), le32(6), le64(0), le64(1), le64(77), le32(6), le32(0), cstr('db-wal')).toString('hex'));
  });
  test('NOTIFY_STORE (4): fuse_notify_store_out {nodeid, offset, size, padding} + data', () => {
    assert.equal(encoded((b) => encodeStore(b, 3, 4096, Buffer.from([1, 2]))), hex(le32(42), le32(4), le64(0), le64(3), le64(4096), le32(2), le32(0), '0102').toString('hex'));
  });
  test('NOTIFY_RETRIEVE (5): fuse_notify_retrieve_out {notify_unique, nodeid, offset, size, padding}', () => {
    assert.equal(encoded((b) => encodeRetrieve(b, 11, 3, 0, 4096)), hex(le32(48), le32(5), le64(0), le64(11), le64(3), le64(0), le32(4096), le32(0)).toString('hex'));
  });
  test('NOTIFY_POLL (1): fuse_notify_poll_wakeup_out {kh}', () => {
    assert.equal(encoded((b) => encodePollWakeup(b, 0x55n)), hex(le32(24), le32(1), le64(0), le64(0x55)).toString('hex'));
  });
});
