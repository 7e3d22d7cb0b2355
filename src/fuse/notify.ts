/**
 * Encoders for unsolicited notifications (fuse_out_header with unique 0 and
 * the notify code in `error`). Written to /dev/fuse by the notifier thread,
 * never by the thread that serves requests: the kernel may wait inside the
 * write for a READ reply only that thread could give.
 */
import { NotifyCode, OUT_HEADER_SIZE } from './abi.js';
import { encodeOutHeader } from './replies.js';

const TWO_32 = 2 ** 32;

function putI64(buf: Buffer, off: number, v: number): void {
  buf.writeBigInt64LE(BigInt(Math.trunc(v)), off);
}

function putU64(buf: Buffer, off: number, v: number): void {
  buf.writeUInt32LE(v % TWO_32, off);
  buf.writeUInt32LE(Math.floor(v / TWO_32) % TWO_32, off + 4);
}

/**
 * NOTIFY_INVAL_INODE: drop cached pages of `ino` in [off, off+len) (len 0 =
 * to end of file) and its cached attributes. off < 0 drops only the
 * attributes. Returns the message length.
 */
export function encodeInvalInode(buf: Buffer, ino: number, off: number, len: number): number {
  const total = OUT_HEADER_SIZE + 24;
  encodeOutHeader(buf, 0, total, NotifyCode.INVAL_INODE, 0);
  putU64(buf, 16, ino);
  putI64(buf, 24, off);
  putI64(buf, 32, len);
  return total;
}

/** NOTIFY_INVAL_ENTRY: drop the cached name `name` in directory `parent`. */
export function encodeInvalEntry(buf: Buffer, parent: number, name: string, flags = 0): number {
  const namelen = Buffer.byteLength(name);
  const total = OUT_HEADER_SIZE + 16 + namelen + 1;
  if (total > buf.length) throw new RangeError(`name of ${namelen} bytes does not fit a notification`);
  encodeOutHeader(buf, 0, total, NotifyCode.INVAL_ENTRY, 0);
  putU64(buf, 16, parent);
  buf.writeUInt32LE(namelen, 24);
  buf.writeUInt32LE(flags >>> 0, 28);
  buf.write(name, 32, namelen, 'utf8');
  buf[32 + namelen] = 0;
  return total;
}

/** NOTIFY_DELETE: `name` in `parent` (inode `child`) is gone; also drops the dentry. */
export function encodeDelete(buf: Buffer, parent: number, child: number, name: string): number {
  const namelen = Buffer.byteLength(name);
  const total = OUT_HEADER_SIZE + 24 + namelen + 1;
  if (total > buf.length) throw new RangeError(`name of ${namelen} bytes does not fit a notification`);
  encodeOutHeader(buf, 0, total, NotifyCode.DELETE, 0);
  putU64(buf, 16, parent);
  putU64(buf, 24, child);
  buf.writeUInt32LE(namelen, 32);
  buf.writeUInt32LE(0, 36);
  buf.write(name, 40, namelen, 'utf8');
  buf[40 + namelen] = 0;
  return total;
}

/** NOTIFY_STORE: put `data` into the page cache of `ino` at `offset`. */
export function encodeStore(buf: Buffer, ino: number, offset: number, data: Uint8Array): number {
  const total = OUT_HEADER_SIZE + 24 + data.length;
  if (total > buf.length) throw new RangeError(`store of ${data.length} bytes does not fit the buffer`);
  encodeOutHeader(buf, 0, total, NotifyCode.STORE, 0);
  putU64(buf, 16, ino);
  putU64(buf, 24, offset);
  buf.writeUInt32LE(data.length, 32);
  buf.writeUInt32LE(0, 36);
  buf.set(data, 40);
  return total;
}

/** NOTIFY_RETRIEVE: ask for cached pages back; answered by a NOTIFY_REPLY request with `notifyUnique`. */
export function encodeRetrieve(buf: Buffer, notifyUnique: number, ino: number, offset: number, size: number): number {
  const total = OUT_HEADER_SIZE + 32;
  encodeOutHeader(buf, 0, total, NotifyCode.RETRIEVE, 0);
  putU64(buf, 16, notifyUnique);
  putU64(buf, 24, ino);
  putU64(buf, 32, offset);
  buf.writeUInt32LE(size >>> 0, 40);
  buf.writeUInt32LE(0, 44);
  return total;
}

/** NOTIFY_POLL: wake pollers waiting on kernel handle `kh`. */
export function encodePollWakeup(buf: Buffer, kh: bigint): number {
  const total = OUT_HEADER_SIZE + 8;
  encodeOutHeader(buf, 0, total, NotifyCode.POLL, 0);
  buf.writeBigUInt64LE(kh, 16);
  return total;
}
