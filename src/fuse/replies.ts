/**
 * Reply payloads and their encoders. Handlers fill reusable "out" objects
 * (EntryOut, AttrOut, OpenOut, ...); the session encodes them straight into
 * its preallocated reply buffer after the 16-byte fuse_out_header.
 * Layouts: include/uapi/linux/fuse.h.
 */
import type { Stats, StatsFs } from 'node:fs';
import { IN_HEADER_SIZE, OFFSET_MAX, OUT_HEADER_SIZE, Size } from './abi.js';

const TWO_32 = 2 ** 32;

/**
 * Encoders write through a DataView of the reply buffer: Buffer's
 * writeUInt32LE range-checks every value in JavaScript, and encoding one
 * fuse_attr that way took ~430 ns against ~35 ns (a GETATTR round trip is
 * ~5 µs). The last buffer's view is kept, since the session reuses one.
 */
let viewedBuffer: Buffer | null = null;
let cachedView: DataView = new DataView(new ArrayBuffer(0));

function viewOf(buf: Buffer): DataView {
  if (buf !== viewedBuffer) {
    viewedBuffer = buf;
    cachedView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  return cachedView;
}

function putU64(v: DataView, off: number, value: number): void {
  // Negative or fractional values would be a handler bug; clamp to keep the
  // kernel from seeing garbage in the high word.
  const n = value > 0 ? Math.floor(value) : 0;
  // setUint32 converts with ToUint32 (modulo 2^32, truncating): the low and
  // the high word of any integer up to 2^53, with no floating-point modulo.
  v.setUint32(off, n, true);
  v.setUint32(off + 4, n / TWO_32, true);
}

/** Splits seconds (may be fractional) into whole seconds and nanoseconds. */
function putTimeout(v: DataView, secOff: number, nsecOff: number, seconds: number): void {
  const s = seconds > 0 ? seconds : 0;
  const whole = Math.floor(s);
  putU64(v, secOff, whole);
  v.setUint32(nsecOff, Math.min(999_999_999, Math.round((s - whole) * 1e9)), true);
}

/** struct fuse_attr. Times are whole seconds plus nanoseconds. */
export interface Attr {
  ino: number;
  size: number;
  blocks: number;
  atime: number;
  atimeNsec: number;
  mtime: number;
  mtimeNsec: number;
  ctime: number;
  ctimeNsec: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  blksize: number;
  flags: number;
}

export function newAttr(): Attr {
  return {
    ino: 0, size: 0, blocks: 0, atime: 0, atimeNsec: 0, mtime: 0, mtimeNsec: 0, ctime: 0, ctimeNsec: 0,
    mode: 0, nlink: 0, uid: 0, gid: 0, rdev: 0, blksize: 0, flags: 0,
  };
}

export function resetAttr(a: Attr): void {
  a.ino = a.size = a.blocks = a.atime = a.atimeNsec = a.mtime = a.mtimeNsec = a.ctime = a.ctimeNsec = 0;
  a.mode = a.nlink = a.uid = a.gid = a.rdev = a.blksize = a.flags = 0;
}

/** Nanoseconds part of a millisecond timestamp (Node's Stats carry µs precision). */
function nsecOf(ms: number, sec: number): number {
  return Math.min(999_999_999, Math.max(0, Math.round((ms - sec * 1000) * 1e6)));
}

/** Copies a Node Stats into `out` (ino: the node id the kernel should see). */
export function attrFromStats(st: Stats, out: Attr, ino: number = st.ino): void {
  out.ino = ino;
  out.size = st.size;
  out.blocks = st.blocks;
  out.atime = Math.floor(st.atimeMs / 1000);
  out.atimeNsec = nsecOf(st.atimeMs, out.atime);
  out.mtime = Math.floor(st.mtimeMs / 1000);
  out.mtimeNsec = nsecOf(st.mtimeMs, out.mtime);
  out.ctime = Math.floor(st.ctimeMs / 1000);
  out.ctimeNsec = nsecOf(st.ctimeMs, out.ctime);
  out.mode = st.mode;
  out.nlink = st.nlink;
  out.uid = st.uid;
  out.gid = st.gid;
  out.rdev = st.rdev;
  out.blksize = st.blksize;
  out.flags = 0;
}

/** Reply to LOOKUP, MKNOD, MKDIR, SYMLINK, LINK, CREATE (first half). nodeid 0 = negative entry. */
export interface EntryOut {
  nodeid: number;
  generation: number;
  /** Seconds the kernel may cache the name (fractions allowed). */
  entryValid: number;
  /** Seconds the kernel may cache the attributes. */
  attrValid: number;
  readonly attr: Attr;
}

export function newEntryOut(): EntryOut {
  return { nodeid: 0, generation: 0, entryValid: 0, attrValid: 0, attr: newAttr() };
}

export function resetEntryOut(e: EntryOut): void {
  e.nodeid = e.generation = e.entryValid = e.attrValid = 0;
  resetAttr(e.attr);
}

/** Reply to GETATTR and SETATTR. */
export interface AttrOut {
  attrValid: number;
  readonly attr: Attr;
}

export function newAttrOut(): AttrOut {
  return { attrValid: 0, attr: newAttr() };
}

/** Reply to OPEN, OPENDIR, CREATE (second half). */
export interface OpenOut {
  fh: number;
  /** OpenFlag bits (KEEP_CACHE, ...). */
  openFlags: number;
}

/** struct fuse_kstatfs. */
export interface StatfsOut {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

/** Fills a STATFS reply from a statfs(2) result of the backing file system. */
export function statfsFromStatsFs(s: StatsFs, out: StatfsOut): void {
  out.blocks = s.blocks;
  out.bfree = s.bfree;
  out.bavail = s.bavail;
  out.files = s.files;
  out.ffree = s.ffree;
  out.bsize = s.bsize;
  out.frsize = s.bsize;
  out.namelen = 255;
}

export function newStatfsOut(): StatfsOut {
  return { blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 0, namelen: 0, frsize: 0 };
}

/** struct fuse_file_lock; end is inclusive, Infinity = to end of file. */
export interface FileLock {
  start: number;
  end: number;
  type: number;
  pid: number;
}

export function encodeAttr(buf: Buffer, off: number, a: Attr): void {
  putAttr(viewOf(buf), off, a);
}

function putAttr(v: DataView, off: number, a: Attr): void {
  putU64(v, off, a.ino);
  putU64(v, off + 8, a.size);
  putU64(v, off + 16, a.blocks);
  putU64(v, off + 24, a.atime);
  putU64(v, off + 32, a.mtime);
  putU64(v, off + 40, a.ctime);
  v.setUint32(off + 48, a.atimeNsec >>> 0, true);
  v.setUint32(off + 52, a.mtimeNsec >>> 0, true);
  v.setUint32(off + 56, a.ctimeNsec >>> 0, true);
  v.setUint32(off + 60, a.mode >>> 0, true);
  v.setUint32(off + 64, a.nlink >>> 0, true);
  v.setUint32(off + 68, a.uid >>> 0, true);
  v.setUint32(off + 72, a.gid >>> 0, true);
  v.setUint32(off + 76, a.rdev >>> 0, true);
  v.setUint32(off + 80, a.blksize >>> 0, true);
  v.setUint32(off + 84, a.flags >>> 0, true);
}

/** fuse_entry_out (128 bytes). */
export function encodeEntryOut(buf: Buffer, off: number, e: EntryOut): number {
  const v = viewOf(buf);
  putU64(v, off, e.nodeid);
  putU64(v, off + 8, e.generation);
  putTimeout(v, off + 16, off + 32, e.entryValid);
  putTimeout(v, off + 24, off + 36, e.attrValid);
  putAttr(v, off + 40, e.attr);
  return Size.ENTRY_OUT;
}

/** fuse_attr_out (104 bytes). */
export function encodeAttrOut(buf: Buffer, off: number, a: AttrOut): number {
  const v = viewOf(buf);
  putTimeout(v, off, off + 8, a.attrValid);
  v.setUint32(off + 12, 0, true);
  putAttr(v, off + 16, a.attr);
  return Size.ATTR_OUT;
}

/** fuse_open_out (16 bytes). */
export function encodeOpenOut(buf: Buffer, off: number, o: OpenOut): number {
  const v = viewOf(buf);
  putU64(v, off, o.fh);
  v.setUint32(off + 8, o.openFlags >>> 0, true);
  v.setUint32(off + 12, 0, true);
  return Size.OPEN_OUT;
}

/** fuse_write_out (8 bytes); also the COPY_FILE_RANGE reply. */
export function encodeWriteOut(buf: Buffer, off: number, size: number): number {
  const v = viewOf(buf);
  v.setUint32(off, size >>> 0, true);
  v.setUint32(off + 4, 0, true);
  return Size.WRITE_OUT;
}

/** fuse_statfs_out (80 bytes). */
export function encodeStatfsOut(buf: Buffer, off: number, s: StatfsOut): number {
  const v = viewOf(buf);
  putU64(v, off, s.blocks);
  putU64(v, off + 8, s.bfree);
  putU64(v, off + 16, s.bavail);
  putU64(v, off + 24, s.files);
  putU64(v, off + 32, s.ffree);
  v.setUint32(off + 40, s.bsize >>> 0, true);
  v.setUint32(off + 44, s.namelen >>> 0, true);
  v.setUint32(off + 48, s.frsize >>> 0, true);
  buf.fill(0, off + 52, off + 80);
  return Size.STATFS_OUT;
}

/** fuse_getxattr_out (8 bytes): the size a GETXATTR/LISTXATTR with size 0 asks for. */
export function encodeGetxattrOut(buf: Buffer, off: number, size: number): number {
  const v = viewOf(buf);
  v.setUint32(off, size >>> 0, true);
  v.setUint32(off + 4, 0, true);
  return Size.GETXATTR_OUT;
}

/** Lock ends: Infinity (and anything past 2^63-1) is sent as OFFSET_MAX. */
function putLockOffset(v: DataView, off: number, value: number): void {
  if (value === Infinity || value >= 2 ** 63) v.setBigUint64(off, OFFSET_MAX, true);
  else putU64(v, off, value);
}

/** fuse_lk_out (24 bytes). */
export function encodeLkOut(buf: Buffer, off: number, l: FileLock): number {
  const v = viewOf(buf);
  putLockOffset(v, off, l.start);
  putLockOffset(v, off + 8, l.end);
  v.setUint32(off + 16, l.type >>> 0, true);
  v.setUint32(off + 20, l.pid >>> 0, true);
  return Size.LK_OUT;
}

/** fuse_init_out (64 bytes). */
export interface InitOut {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  maxBackground: number;
  congestionThreshold: number;
  maxWrite: number;
  timeGran: number;
  maxPages: number;
  mapAlignment: number;
  flags2: number;
}

export function encodeInitOut(buf: Buffer, off: number, i: InitOut): number {
  const v = viewOf(buf);
  v.setUint32(off, i.major >>> 0, true);
  v.setUint32(off + 4, i.minor >>> 0, true);
  v.setUint32(off + 8, i.maxReadahead >>> 0, true);
  v.setUint32(off + 12, i.flags >>> 0, true);
  v.setUint16(off + 16, i.maxBackground & 0xffff, true);
  v.setUint16(off + 18, i.congestionThreshold & 0xffff, true);
  v.setUint32(off + 20, i.maxWrite >>> 0, true);
  v.setUint32(off + 24, i.timeGran >>> 0, true);
  v.setUint16(off + 28, i.maxPages & 0xffff, true);
  v.setUint16(off + 30, i.mapAlignment & 0xffff, true);
  v.setUint32(off + 32, i.flags2 >>> 0, true);
  buf.fill(0, off + 36, off + 64);
  return Size.INIT_OUT;
}

/** fuse_bmap_out / fuse_lseek_out (one u64). */
export function encodeU64Out(buf: Buffer, off: number, value: number): number {
  putU64(viewOf(buf), off, value);
  return 8;
}

/** fuse_poll_out (8 bytes). */
export function encodePollOut(buf: Buffer, off: number, revents: number): number {
  const v = viewOf(buf);
  v.setUint32(off, revents >>> 0, true);
  v.setUint32(off + 4, 0, true);
  return Size.POLL_OUT;
}

/** fuse_ioctl_out (16 bytes), without iovecs. */
export function encodeIoctlOut(buf: Buffer, off: number, result: number, flags: number): number {
  const v = viewOf(buf);
  v.setInt32(off, result | 0, true);
  v.setUint32(off + 4, flags >>> 0, true);
  v.setUint32(off + 8, 0, true);
  v.setUint32(off + 12, 0, true);
  return Size.IOCTL_OUT;
}

/** fuse_out_header (16 bytes). `error` is 0 or a negative errno. */
export function encodeOutHeader(buf: Buffer, off: number, len: number, error: number, unique: number): void {
  const v = viewOf(buf);
  v.setUint32(off, len >>> 0, true);
  v.setInt32(off + 4, error | 0, true);
  putU64(v, off + 8, unique);
}

/** Rounds up to the next multiple of 8 (FUSE_DIRENT_ALIGN). */
export function align8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * Fills a READDIR or READDIRPLUS reply in place. `add` returns false when the
 * entry does not fit in the size the kernel asked for; the handler stops
 * there and the kernel asks again from that entry's offset.
 */
export class DirentWriter {
  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  private pos = 0;
  private limit = 0;
  private plus = false;
  private readonly entry: EntryOut = newEntryOut();

  /** Session use: start a reply of at most `size` bytes at `off` of `buf`. */
  reset(buf: Buffer, off: number, size: number, plus: boolean): void {
    this.buf = buf;
    this.start = this.pos = off;
    this.limit = off + Math.min(size, buf.length - off);
    this.plus = plus;
  }

  /** True for READDIRPLUS: entries carry an EntryOut (`addPlus`). */
  get isPlus(): boolean {
    return this.plus;
  }

  /** Bytes written so far. */
  get length(): number {
    return this.pos - this.start;
  }

  /**
   * A reusable EntryOut to fill before `addPlus` (reset by this call). For
   * READDIRPLUS a nodeid other than 0 counts as one lookup of that inode,
   * except for "." and "..".
   */
  nextEntry(): EntryOut {
    resetEntryOut(this.entry);
    return this.entry;
  }

  /** Adds a fuse_dirent. `nextOffset` is what the kernel passes back to continue after it. */
  add(ino: number, name: string, type: number, nextOffset: number): boolean {
    const namelen = Buffer.byteLength(name);
    const size = align8(Size.DIRENT_HEADER + namelen);
    if (this.pos + size > this.limit) return false;
    this.writeDirent(this.pos, ino, name, namelen, type, nextOffset, size);
    this.pos += size;
    return true;
  }

  /** Adds a fuse_direntplus using `entry` (from nextEntry()). */
  addPlus(entry: EntryOut, name: string, type: number, nextOffset: number): boolean {
    const namelen = Buffer.byteLength(name);
    const size = align8(Size.ENTRY_OUT + Size.DIRENT_HEADER + namelen);
    if (this.pos + size > this.limit) return false;
    encodeEntryOut(this.buf, this.pos, entry);
    this.writeDirent(this.pos + Size.ENTRY_OUT, entry.attr.ino, name, namelen, type, nextOffset, size - Size.ENTRY_OUT);
    this.pos += size;
    return true;
  }

  private writeDirent(at: number, ino: number, name: string, namelen: number, type: number, off: number, size: number): void {
    const b = this.buf;
    const v = viewOf(b);
    putU64(v, at, ino);
    putU64(v, at + 8, off);
    v.setUint32(at + 16, namelen, true);
    v.setUint32(at + 20, type >>> 0, true);
    b.write(name, at + 24, namelen, 'utf8');
    b.fill(0, at + 24 + namelen, at + size);
  }
}

/** Bytes a reply buffer needs for a READ of `maxRead` bytes. */
export function replyBufferSize(maxRead: number): number {
  return OUT_HEADER_SIZE + Math.max(maxRead, 64 * 1024);
}

/** Bytes a request buffer needs for WRITEs of up to `maxWrite` (kernel rule plus room for names). */
export function requestBufferSize(maxWrite: number): number {
  return IN_HEADER_SIZE + 40 + maxWrite + 64 * 1024;
}
