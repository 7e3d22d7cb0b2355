/**
 * Decoding of kernel requests read from /dev/fuse. One `RequestDecoder`
 * owns one reusable object per opcode: decoding overwrites it in place, so
 * the request path allocates nothing but the file names it must turn into
 * strings. A decoded request is valid until the next `decode` call; WRITE's
 * `data` (and SETXATTR's, IOCTL's, NOTIFY_REPLY's) is a view into the read
 * buffer, not a copy.
 *
 * Layouts: include/uapi/linux/fuse.h, protocol 7.31..7.38. Every length is
 * checked against the bytes actually read before it is used; malformed input
 * throws FuseDecodeError, never anything else.
 */
import { IN_HEADER_SIZE, InitFlag, Opcode } from './abi.js';
import { FuseDecodeError } from './errors.js';

/** fuse_in_header. `nodeid` is the inode the request is about. */
export interface InHeader {
  len: number;
  opcode: number;
  unique: number;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
  /** Length of header extensions after the arguments, in 8-byte units. */
  totalExtlen: number;
}

interface Base<Op extends number> {
  readonly opcode: Op;
  readonly header: InHeader;
}

export interface LookupRequest extends Base<typeof Opcode.LOOKUP> { name: string }
export interface ForgetRequest extends Base<typeof Opcode.FORGET> { nlookup: number }
export interface GetattrRequest extends Base<typeof Opcode.GETATTR> {
  getattrFlags: number;
  /** Meaningful only when getattrFlags has FUSE_GETATTR_FH. */
  fh: number;
}
export interface SetattrRequest extends Base<typeof Opcode.SETATTR> {
  /** SetattrValid bits saying which fields below are set. */
  valid: number;
  fh: number;
  size: number;
  lockOwner: bigint;
  atime: number;
  mtime: number;
  ctime: number;
  atimeNsec: number;
  mtimeNsec: number;
  ctimeNsec: number;
  mode: number;
  uid: number;
  gid: number;
}
export type ReadlinkRequest = Base<typeof Opcode.READLINK>;
export interface SymlinkRequest extends Base<typeof Opcode.SYMLINK> { name: string; target: string }
export interface MknodRequest extends Base<typeof Opcode.MKNOD> { mode: number; rdev: number; umask: number; name: string }
export interface MkdirRequest extends Base<typeof Opcode.MKDIR> { mode: number; umask: number; name: string }
export interface UnlinkRequest extends Base<typeof Opcode.UNLINK> { name: string }
export interface RmdirRequest extends Base<typeof Opcode.RMDIR> { name: string }
/** RENAME and RENAME2 (flags 0 for RENAME). */
export interface RenameRequest extends Base<typeof Opcode.RENAME | typeof Opcode.RENAME2> {
  newdir: number;
  flags: number;
  name: string;
  newName: string;
}
export interface LinkRequest extends Base<typeof Opcode.LINK> { oldNodeid: number; newName: string }
/** OPEN and OPENDIR. */
export interface OpenRequest extends Base<typeof Opcode.OPEN | typeof Opcode.OPENDIR> { flags: number; openFlags: number }
/** READ, READDIR and READDIRPLUS (fuse_read_in). */
export interface ReadRequest extends Base<typeof Opcode.READ | typeof Opcode.READDIR | typeof Opcode.READDIRPLUS> {
  fh: number;
  offset: number;
  size: number;
  readFlags: number;
  lockOwner: bigint;
  flags: number;
}
export interface WriteRequest extends Base<typeof Opcode.WRITE> {
  fh: number;
  offset: number;
  size: number;
  writeFlags: number;
  lockOwner: bigint;
  flags: number;
  /** The bytes to write: a view into the session's read buffer. */
  data: Buffer;
}
export type StatfsRequest = Base<typeof Opcode.STATFS>;
/** RELEASE and RELEASEDIR. */
export interface ReleaseRequest extends Base<typeof Opcode.RELEASE | typeof Opcode.RELEASEDIR> {
  fh: number;
  flags: number;
  releaseFlags: number;
  /** Valid when releaseFlags has FUSE_RELEASE_FLOCK_UNLOCK. */
  lockOwner: bigint;
}
/** FSYNC and FSYNCDIR. */
export interface FsyncRequest extends Base<typeof Opcode.FSYNC | typeof Opcode.FSYNCDIR> { fh: number; fsyncFlags: number }
export interface SetxattrRequest extends Base<typeof Opcode.SETXATTR> {
  flags: number;
  setxattrFlags: number;
  name: string;
  value: Buffer;
}
export interface GetxattrRequest extends Base<typeof Opcode.GETXATTR> { size: number; name: string }
export interface ListxattrRequest extends Base<typeof Opcode.LISTXATTR> { size: number }
export interface RemovexattrRequest extends Base<typeof Opcode.REMOVEXATTR> { name: string }
export interface FlushRequest extends Base<typeof Opcode.FLUSH> { fh: number; lockOwner: bigint }
export interface InitRequest extends Base<typeof Opcode.INIT> {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  /** INIT flags 32..63 (only when flags has INIT_EXT). */
  flags2: number;
}
/** GETLK, SETLK and SETLKW (fuse_lk_in). */
export interface LockRequest extends Base<typeof Opcode.GETLK | typeof Opcode.SETLK | typeof Opcode.SETLKW> {
  fh: number;
  owner: bigint;
  start: number;
  /** Inclusive; Infinity = to end of file (the kernel's OFFSET_MAX). */
  end: number;
  type: number;
  pid: number;
  lkFlags: number;
}
export interface AccessRequest extends Base<typeof Opcode.ACCESS> { mask: number }
/** CREATE and TMPFILE (fuse_create_in + name). */
export interface CreateRequest extends Base<typeof Opcode.CREATE | typeof Opcode.TMPFILE> {
  flags: number;
  mode: number;
  umask: number;
  openFlags: number;
  name: string;
}
export interface InterruptRequest extends Base<typeof Opcode.INTERRUPT> { interruptedUnique: number }
export interface BmapRequest extends Base<typeof Opcode.BMAP> { block: number; blocksize: number }
export type DestroyRequest = Base<typeof Opcode.DESTROY>;
export interface IoctlRequest extends Base<typeof Opcode.IOCTL> {
  fh: number;
  flags: number;
  cmd: number;
  arg: bigint;
  inSize: number;
  outSize: number;
  data: Buffer;
}
export interface PollRequest extends Base<typeof Opcode.POLL> { fh: number; kh: bigint; flags: number; events: number }
export interface NotifyReplyRequest extends Base<typeof Opcode.NOTIFY_REPLY> { offset: number; size: number; data: Buffer }
export interface BatchForgetRequest extends Base<typeof Opcode.BATCH_FORGET> {
  count: number;
  /** Entries 0..count-1 are valid; the arrays are reused between requests. */
  nodeids: number[];
  nlookups: number[];
}
export interface FallocateRequest extends Base<typeof Opcode.FALLOCATE> { fh: number; offset: number; length: number; mode: number }
export interface LseekRequest extends Base<typeof Opcode.LSEEK> { fh: number; offset: number; whence: number }
export interface CopyFileRangeRequest extends Base<typeof Opcode.COPY_FILE_RANGE | typeof Opcode.COPY_FILE_RANGE_64> {
  fhIn: number;
  offIn: number;
  nodeidOut: number;
  fhOut: number;
  offOut: number;
  len: number;
  flags: number;
}
export type SyncfsRequest = Base<typeof Opcode.SYNCFS>;
export interface StatxRequest extends Base<typeof Opcode.STATX> { getattrFlags: number; fh: number; sxFlags: number; sxMask: number }
/**
 * `opcode` of the request object for SETUPMAPPING, REMOVEMAPPING, CUSE_INIT
 * and opcodes this codec does not know (header only; header.opcode has the
 * number).
 */
export const OTHER_OPCODE = -1;
export type OtherRequest = Base<typeof OTHER_OPCODE>;

export type FuseRequest =
  | LookupRequest
  | ForgetRequest
  | GetattrRequest
  | SetattrRequest
  | ReadlinkRequest
  | SymlinkRequest
  | MknodRequest
  | MkdirRequest
  | UnlinkRequest
  | RmdirRequest
  | RenameRequest
  | LinkRequest
  | OpenRequest
  | ReadRequest
  | WriteRequest
  | StatfsRequest
  | ReleaseRequest
  | FsyncRequest
  | SetxattrRequest
  | GetxattrRequest
  | ListxattrRequest
  | RemovexattrRequest
  | FlushRequest
  | InitRequest
  | LockRequest
  | AccessRequest
  | CreateRequest
  | InterruptRequest
  | BmapRequest
  | DestroyRequest
  | IoctlRequest
  | PollRequest
  | NotifyReplyRequest
  | BatchForgetRequest
  | FallocateRequest
  | LseekRequest
  | CopyFileRangeRequest
  | SyncfsRequest
  | StatxRequest
  | OtherRequest;

const TWO_32 = 2 ** 32;
/** 2^53: lock ends at or beyond this mean "to end of file". */
const SAFE_LIMIT = 2 ** 53;

function u64(v: DataView, off: number): number {
  return v.getUint32(off, true) + v.getUint32(off + 4, true) * TWO_32;
}

/**
 * Lock offsets: the kernel sends OFFSET_MAX (2^63-1) for "to EOF"; anything
 * not exactly representable becomes Infinity so comparisons stay correct.
 */
function lockOffset(view: DataView, off: number): number {
  const v = u64(view, off);
  return v >= SAFE_LIMIT ? Infinity : v;
}

const EMPTY = Buffer.alloc(0);

/** Per-request decoding state; see the file comment. */
export class RequestDecoder {
  /** Set after INIT: SETXATTR then carries the 16-byte fuse_setxattr_in. */
  setxattrExt = false;

  readonly header: InHeader = { len: 0, opcode: 0, unique: 0, nodeid: 0, uid: 0, gid: 0, pid: 0, totalExtlen: 0 };

  private buf: Buffer = EMPTY;
  /**
   * Fields are read through a DataView of the request buffer: Buffer's
   * readUInt32LE made decoding the header alone cost ~105 ns against ~5 ns.
   */
  private view: DataView = new DataView(EMPTY.buffer, EMPTY.byteOffset, 0);
  /** Offset one past the last argument byte (extensions excluded). */
  private end = 0;

  private readonly lookup: LookupRequest = { opcode: Opcode.LOOKUP, header: this.header, name: '' };
  private readonly forget: ForgetRequest = { opcode: Opcode.FORGET, header: this.header, nlookup: 0 };
  private readonly getattr: GetattrRequest = { opcode: Opcode.GETATTR, header: this.header, getattrFlags: 0, fh: 0 };
  private readonly setattr: SetattrRequest = {
    opcode: Opcode.SETATTR, header: this.header, valid: 0, fh: 0, size: 0, lockOwner: 0n, atime: 0, mtime: 0,
    ctime: 0, atimeNsec: 0, mtimeNsec: 0, ctimeNsec: 0, mode: 0, uid: 0, gid: 0,
  };
  private readonly readlink: ReadlinkRequest = { opcode: Opcode.READLINK, header: this.header };
  private readonly symlink: SymlinkRequest = { opcode: Opcode.SYMLINK, header: this.header, name: '', target: '' };
  private readonly mknod: MknodRequest = { opcode: Opcode.MKNOD, header: this.header, mode: 0, rdev: 0, umask: 0, name: '' };
  private readonly mkdir: MkdirRequest = { opcode: Opcode.MKDIR, header: this.header, mode: 0, umask: 0, name: '' };
  private readonly unlink: UnlinkRequest = { opcode: Opcode.UNLINK, header: this.header, name: '' };
  private readonly rmdir: RmdirRequest = { opcode: Opcode.RMDIR, header: this.header, name: '' };
  private readonly rename: { -readonly [K in keyof RenameRequest]: RenameRequest[K] } = {
    opcode: Opcode.RENAME, header: this.header, newdir: 0, flags: 0, name: '', newName: '',
  };
  private readonly link: LinkRequest = { opcode: Opcode.LINK, header: this.header, oldNodeid: 0, newName: '' };
  private readonly open: { -readonly [K in keyof OpenRequest]: OpenRequest[K] } = {
    opcode: Opcode.OPEN, header: this.header, flags: 0, openFlags: 0,
  };
  private readonly read: { -readonly [K in keyof ReadRequest]: ReadRequest[K] } = {
    opcode: Opcode.READ, header: this.header, fh: 0, offset: 0, size: 0, readFlags: 0, lockOwner: 0n, flags: 0,
  };
  private readonly write: WriteRequest = {
    opcode: Opcode.WRITE, header: this.header, fh: 0, offset: 0, size: 0, writeFlags: 0, lockOwner: 0n, flags: 0, data: EMPTY,
  };
  private readonly statfs: StatfsRequest = { opcode: Opcode.STATFS, header: this.header };
  private readonly release: { -readonly [K in keyof ReleaseRequest]: ReleaseRequest[K] } = {
    opcode: Opcode.RELEASE, header: this.header, fh: 0, flags: 0, releaseFlags: 0, lockOwner: 0n,
  };
  private readonly fsync: { -readonly [K in keyof FsyncRequest]: FsyncRequest[K] } = {
    opcode: Opcode.FSYNC, header: this.header, fh: 0, fsyncFlags: 0,
  };
  private readonly setxattr: SetxattrRequest = {
    opcode: Opcode.SETXATTR, header: this.header, flags: 0, setxattrFlags: 0, name: '', value: EMPTY,
  };
  private readonly getxattr: GetxattrRequest = { opcode: Opcode.GETXATTR, header: this.header, size: 0, name: '' };
  private readonly listxattr: ListxattrRequest = { opcode: Opcode.LISTXATTR, header: this.header, size: 0 };
  private readonly removexattr: RemovexattrRequest = { opcode: Opcode.REMOVEXATTR, header: this.header, name: '' };
  private readonly flush: FlushRequest = { opcode: Opcode.FLUSH, header: this.header, fh: 0, lockOwner: 0n };
  private readonly init: InitRequest = {
    opcode: Opcode.INIT, header: this.header, major: 0, minor: 0, maxReadahead: 0, flags: 0, flags2: 0,
  };
  private readonly lock: { -readonly [K in keyof LockRequest]: LockRequest[K] } = {
    opcode: Opcode.GETLK, header: this.header, fh: 0, owner: 0n, start: 0, end: 0, type: 0, pid: 0, lkFlags: 0,
  };
  private readonly access: AccessRequest = { opcode: Opcode.ACCESS, header: this.header, mask: 0 };
  private readonly create: { -readonly [K in keyof CreateRequest]: CreateRequest[K] } = {
    opcode: Opcode.CREATE, header: this.header, flags: 0, mode: 0, umask: 0, openFlags: 0, name: '',
  };
  private readonly interrupt: InterruptRequest = { opcode: Opcode.INTERRUPT, header: this.header, interruptedUnique: 0 };
  private readonly bmap: BmapRequest = { opcode: Opcode.BMAP, header: this.header, block: 0, blocksize: 0 };
  private readonly destroy: DestroyRequest = { opcode: Opcode.DESTROY, header: this.header };
  private readonly ioctl: IoctlRequest = {
    opcode: Opcode.IOCTL, header: this.header, fh: 0, flags: 0, cmd: 0, arg: 0n, inSize: 0, outSize: 0, data: EMPTY,
  };
  private readonly poll: PollRequest = { opcode: Opcode.POLL, header: this.header, fh: 0, kh: 0n, flags: 0, events: 0 };
  private readonly notifyReply: NotifyReplyRequest = {
    opcode: Opcode.NOTIFY_REPLY, header: this.header, offset: 0, size: 0, data: EMPTY,
  };
  private readonly batchForget: BatchForgetRequest = {
    opcode: Opcode.BATCH_FORGET, header: this.header, count: 0, nodeids: [], nlookups: [],
  };
  private readonly fallocate: FallocateRequest = {
    opcode: Opcode.FALLOCATE, header: this.header, fh: 0, offset: 0, length: 0, mode: 0,
  };
  private readonly lseek: LseekRequest = { opcode: Opcode.LSEEK, header: this.header, fh: 0, offset: 0, whence: 0 };
  private readonly copyFileRange: { -readonly [K in keyof CopyFileRangeRequest]: CopyFileRangeRequest[K] } = {
    opcode: Opcode.COPY_FILE_RANGE, header: this.header, fhIn: 0, offIn: 0, nodeidOut: 0, fhOut: 0, offOut: 0, len: 0, flags: 0,
  };
  private readonly syncfs: SyncfsRequest = { opcode: Opcode.SYNCFS, header: this.header };
  private readonly statx: StatxRequest = {
    opcode: Opcode.STATX, header: this.header, getattrFlags: 0, fh: 0, sxFlags: 0, sxMask: 0,
  };
  private readonly other: OtherRequest = { opcode: OTHER_OPCODE, header: this.header };

  /** Decodes the `length` bytes at the start of `buf` (one read from /dev/fuse). */
  decode(buf: Buffer, length: number): FuseRequest {
    const h = this.header;
    if (length < IN_HEADER_SIZE || length > buf.length) {
      throw new FuseDecodeError(`request of ${length} bytes is shorter than the 40-byte header`, 0);
    }
    if (buf !== this.buf) {
      this.buf = buf;
      this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    const v = this.view;
    h.len = v.getUint32(0, true);
    h.opcode = v.getUint32(4, true);
    h.unique = u64(v, 8);
    h.nodeid = u64(v, 16);
    h.uid = v.getUint32(24, true);
    h.gid = v.getUint32(28, true);
    h.pid = v.getUint32(32, true);
    h.totalExtlen = v.getUint16(36, true);
    if (h.len !== length) {
      throw new FuseDecodeError(`header says ${h.len} bytes but ${length} were read`, h.opcode);
    }
    const end = length - h.totalExtlen * 8;
    if (end < IN_HEADER_SIZE) throw new FuseDecodeError(`extensions (${h.totalExtlen * 8} bytes) overrun the request`, h.opcode);
    this.end = end;
    const p = IN_HEADER_SIZE;
    switch (h.opcode) {
      case Opcode.LOOKUP: {
        this.lookup.name = this.lastName(p);
        return this.lookup;
      }
      case Opcode.FORGET: {
        this.need(8);
        this.forget.nlookup = u64(v, p);
        return this.forget;
      }
      case Opcode.GETATTR: {
        this.need(16);
        const r = this.getattr;
        r.getattrFlags = v.getUint32(p, true);
        r.fh = u64(v, p + 8);
        return r;
      }
      case Opcode.SETATTR: {
        this.need(88);
        const r = this.setattr;
        r.valid = v.getUint32(p, true);
        r.fh = u64(v, p + 8);
        r.size = u64(v, p + 16);
        r.lockOwner = this.owner(v, p + 24);
        r.atime = u64(v, p + 32);
        r.mtime = u64(v, p + 40);
        r.ctime = u64(v, p + 48);
        r.atimeNsec = v.getUint32(p + 56, true);
        r.mtimeNsec = v.getUint32(p + 60, true);
        r.ctimeNsec = v.getUint32(p + 64, true);
        r.mode = v.getUint32(p + 68, true);
        r.uid = v.getUint32(p + 76, true);
        r.gid = v.getUint32(p + 80, true);
        return r;
      }
      case Opcode.READLINK:
        return this.readlink;
      case Opcode.SYMLINK: {
        const r = this.symlink;
        const next = this.nameAt(p);
        r.name = this.str;
        r.target = this.lastName(next);
        return r;
      }
      case Opcode.MKNOD: {
        this.need(16);
        const r = this.mknod;
        r.mode = v.getUint32(p, true);
        r.rdev = v.getUint32(p + 4, true);
        r.umask = v.getUint32(p + 8, true);
        r.name = this.lastName(p + 16);
        return r;
      }
      case Opcode.MKDIR: {
        this.need(8);
        const r = this.mkdir;
        r.mode = v.getUint32(p, true);
        r.umask = v.getUint32(p + 4, true);
        r.name = this.lastName(p + 8);
        return r;
      }
      case Opcode.UNLINK:
        this.unlink.name = this.lastName(p);
        return this.unlink;
      case Opcode.RMDIR:
        this.rmdir.name = this.lastName(p);
        return this.rmdir;
      case Opcode.RENAME:
      case Opcode.RENAME2: {
        const fixed = h.opcode === Opcode.RENAME ? 8 : 16;
        this.need(fixed);
        const r = this.rename;
        r.opcode = h.opcode;
        r.newdir = u64(v, p);
        r.flags = h.opcode === Opcode.RENAME ? 0 : v.getUint32(p + 8, true);
        const next = this.nameAt(p + fixed);
        r.name = this.str;
        r.newName = this.lastName(next);
        return r;
      }
      case Opcode.LINK: {
        this.need(8);
        const r = this.link;
        r.oldNodeid = u64(v, p);
        r.newName = this.lastName(p + 8);
        return r;
      }
      case Opcode.OPEN:
      case Opcode.OPENDIR: {
        this.need(8);
        const r = this.open;
        r.opcode = h.opcode;
        r.flags = v.getUint32(p, true);
        r.openFlags = v.getUint32(p + 4, true);
        return r;
      }
      case Opcode.READ:
      case Opcode.READDIR:
      case Opcode.READDIRPLUS: {
        this.need(40);
        const r = this.read;
        r.opcode = h.opcode;
        r.fh = u64(v, p);
        r.offset = u64(v, p + 8);
        r.size = v.getUint32(p + 16, true);
        r.readFlags = v.getUint32(p + 20, true);
        r.lockOwner = this.owner(v, p + 24);
        r.flags = v.getUint32(p + 32, true);
        return r;
      }
      case Opcode.WRITE: {
        this.need(40);
        const r = this.write;
        r.fh = u64(v, p);
        r.offset = u64(v, p + 8);
        r.size = v.getUint32(p + 16, true);
        r.writeFlags = v.getUint32(p + 20, true);
        r.lockOwner = this.owner(v, p + 24);
        r.flags = v.getUint32(p + 32, true);
        if (r.size > end - (p + 40)) {
          throw new FuseDecodeError(`WRITE of ${r.size} bytes carries only ${end - p - 40}`, h.opcode);
        }
        r.data = buf.subarray(p + 40, p + 40 + r.size);
        return r;
      }
      case Opcode.STATFS:
        return this.statfs;
      case Opcode.RELEASE:
      case Opcode.RELEASEDIR: {
        this.need(24);
        const r = this.release;
        r.opcode = h.opcode;
        r.fh = u64(v, p);
        r.flags = v.getUint32(p + 8, true);
        r.releaseFlags = v.getUint32(p + 12, true);
        r.lockOwner = this.owner(v, p + 16);
        return r;
      }
      case Opcode.FSYNC:
      case Opcode.FSYNCDIR: {
        this.need(16);
        const r = this.fsync;
        r.opcode = h.opcode;
        r.fh = u64(v, p);
        r.fsyncFlags = v.getUint32(p + 8, true);
        return r;
      }
      case Opcode.SETXATTR: {
        const fixed = this.setxattrExt ? 16 : 8;
        this.need(fixed);
        const r = this.setxattr;
        const size = v.getUint32(p, true);
        r.flags = v.getUint32(p + 4, true);
        r.setxattrFlags = this.setxattrExt ? v.getUint32(p + 8, true) : 0;
        const next = this.nameAt(p + fixed);
        r.name = this.str;
        if (size > end - next) throw new FuseDecodeError(`SETXATTR value of ${size} bytes carries only ${end - next}`, h.opcode);
        r.value = buf.subarray(next, next + size);
        return r;
      }
      case Opcode.GETXATTR: {
        this.need(8);
        this.getxattr.size = v.getUint32(p, true);
        this.getxattr.name = this.lastName(p + 8);
        return this.getxattr;
      }
      case Opcode.LISTXATTR:
        this.need(8);
        this.listxattr.size = v.getUint32(p, true);
        return this.listxattr;
      case Opcode.REMOVEXATTR:
        this.removexattr.name = this.lastName(p);
        return this.removexattr;
      case Opcode.FLUSH: {
        this.need(24);
        this.flush.fh = u64(v, p);
        this.flush.lockOwner = this.owner(v, p + 16);
        return this.flush;
      }
      case Opcode.INIT: {
        this.need(16);
        const r = this.init;
        r.major = v.getUint32(p, true);
        r.minor = v.getUint32(p + 4, true);
        r.maxReadahead = v.getUint32(p + 8, true);
        r.flags = v.getUint32(p + 12, true);
        r.flags2 = end - p >= 20 && (r.flags & InitFlag.INIT_EXT) !== 0 ? v.getUint32(p + 16, true) : 0;
        return r;
      }
      case Opcode.GETLK:
      case Opcode.SETLK:
      case Opcode.SETLKW: {
        this.need(48);
        const r = this.lock;
        r.opcode = h.opcode;
        r.fh = u64(v, p);
        r.owner = this.owner(v, p + 8);
        r.start = lockOffset(v, p + 16);
        r.end = lockOffset(v, p + 24);
        r.type = v.getUint32(p + 32, true);
        r.pid = v.getUint32(p + 36, true);
        r.lkFlags = v.getUint32(p + 40, true);
        return r;
      }
      case Opcode.ACCESS:
        this.need(8);
        this.access.mask = v.getUint32(p, true);
        return this.access;
      case Opcode.CREATE:
      case Opcode.TMPFILE: {
        this.need(16);
        const r = this.create;
        r.opcode = h.opcode;
        r.flags = v.getUint32(p, true);
        r.mode = v.getUint32(p + 4, true);
        r.umask = v.getUint32(p + 8, true);
        r.openFlags = v.getUint32(p + 12, true);
        r.name = this.lastName(p + 16);
        return r;
      }
      case Opcode.INTERRUPT:
        this.need(8);
        this.interrupt.interruptedUnique = u64(v, p);
        return this.interrupt;
      case Opcode.BMAP:
        this.need(16);
        this.bmap.block = u64(v, p);
        this.bmap.blocksize = v.getUint32(p + 8, true);
        return this.bmap;
      case Opcode.DESTROY:
        return this.destroy;
      case Opcode.IOCTL: {
        this.need(32);
        const r = this.ioctl;
        r.fh = u64(v, p);
        r.flags = v.getUint32(p + 8, true);
        r.cmd = v.getUint32(p + 12, true);
        r.arg = v.getBigUint64(p + 16, true);
        r.inSize = v.getUint32(p + 24, true);
        r.outSize = v.getUint32(p + 28, true);
        if (r.inSize > end - (p + 32)) throw new FuseDecodeError(`IOCTL input of ${r.inSize} bytes overruns the request`, h.opcode);
        r.data = buf.subarray(p + 32, p + 32 + r.inSize);
        return r;
      }
      case Opcode.POLL: {
        this.need(24);
        const r = this.poll;
        r.fh = u64(v, p);
        r.kh = v.getBigUint64(p + 8, true);
        r.flags = v.getUint32(p + 16, true);
        r.events = v.getUint32(p + 20, true);
        return r;
      }
      case Opcode.NOTIFY_REPLY: {
        this.need(40);
        const r = this.notifyReply;
        r.offset = u64(v, p + 8);
        r.size = v.getUint32(p + 16, true);
        if (r.size > end - (p + 40)) throw new FuseDecodeError(`NOTIFY_REPLY of ${r.size} bytes overruns the request`, h.opcode);
        r.data = buf.subarray(p + 40, p + 40 + r.size);
        return r;
      }
      case Opcode.BATCH_FORGET: {
        this.need(8);
        const r = this.batchForget;
        const count = v.getUint32(p, true);
        // Bound: every entry is 16 bytes of the request actually read, so the
        // arrays never grow past (read buffer size / 16).
        if (count > (end - p - 8) / 16) throw new FuseDecodeError(`BATCH_FORGET of ${count} entries overruns the request`, h.opcode);
        r.count = count;
        for (let i = 0; i < count; i++) {
          r.nodeids[i] = u64(v, p + 8 + i * 16);
          r.nlookups[i] = u64(v, p + 16 + i * 16);
        }
        return r;
      }
      case Opcode.FALLOCATE: {
        this.need(32);
        const r = this.fallocate;
        r.fh = u64(v, p);
        r.offset = u64(v, p + 8);
        r.length = u64(v, p + 16);
        r.mode = v.getUint32(p + 24, true);
        return r;
      }
      case Opcode.LSEEK: {
        this.need(24);
        const r = this.lseek;
        r.fh = u64(v, p);
        r.offset = u64(v, p + 8);
        r.whence = v.getUint32(p + 16, true);
        return r;
      }
      case Opcode.COPY_FILE_RANGE:
      case Opcode.COPY_FILE_RANGE_64: {
        this.need(56);
        const r = this.copyFileRange;
        r.opcode = h.opcode;
        r.fhIn = u64(v, p);
        r.offIn = u64(v, p + 8);
        r.nodeidOut = u64(v, p + 16);
        r.fhOut = u64(v, p + 24);
        r.offOut = u64(v, p + 32);
        r.len = u64(v, p + 40);
        r.flags = u64(v, p + 48);
        return r;
      }
      case Opcode.SYNCFS:
        this.need(8);
        return this.syncfs;
      case Opcode.STATX: {
        this.need(24);
        const r = this.statx;
        r.getattrFlags = v.getUint32(p, true);
        r.fh = u64(v, p + 8);
        r.sxFlags = v.getUint32(p + 16, true);
        r.sxMask = v.getUint32(p + 20, true);
        return r;
      }
      default:
        return this.other;
    }
  }

  private ownerLo = 0;
  private ownerHi = 0;
  private ownerValue = 0n;

  /**
   * A lock owner (u64) as a bigint, reusing the last one when the bits are
   * the same: owners repeat request after request (one per process or open
   * file), and this keeps the lock path from allocating a BigInt each time.
   */
  private owner(v: DataView, off: number): bigint {
    const lo = v.getUint32(off, true);
    const hi = v.getUint32(off + 4, true);
    if (lo !== this.ownerLo || hi !== this.ownerHi) {
      this.ownerLo = lo;
      this.ownerHi = hi;
      this.ownerValue = (BigInt(hi) << 32n) | BigInt(lo);
    }
    return this.ownerValue;
  }

  /** Throws unless `n` argument bytes follow the header. */
  private need(n: number): void {
    if (this.end - IN_HEADER_SIZE < n) {
      throw new FuseDecodeError(
        `request carries ${this.end - IN_HEADER_SIZE} argument bytes, needs ${n}`,
        this.header.opcode,
      );
    }
  }

  private str = '';

  /** Reads the NUL-terminated name at `off` into `this.str`; returns the offset after the NUL. */
  private nameAt(off: number): number {
    if (off > this.end) throw new FuseDecodeError('name starts past the request', this.header.opcode);
    const nul = this.buf.indexOf(0, off);
    if (nul < 0 || nul >= this.end) throw new FuseDecodeError('name is not NUL-terminated', this.header.opcode);
    this.str = this.buf.toString('utf8', off, nul);
    return nul + 1;
  }

  private lastName(off: number): string {
    this.nameAt(off);
    return this.str;
  }
}
