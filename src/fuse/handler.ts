/**
 * The low-level, inode-based interface a file system implements to be
 * served by a FuseSession (the shape of libfuse's lowlevel API). Every method
 * is optional: a missing one answers ENOSYS. Methods run synchronously on
 * the FUSE thread, one at a time; they fail a request by throwing a
 * FuseError (or any Node system error, whose errno is used).
 *
 * Request objects and "out" objects are reused between requests: read what
 * you need during the call, never keep a reference.
 */
import type {
  AccessRequest,
  BmapRequest,
  CopyFileRangeRequest,
  CreateRequest,
  FallocateRequest,
  FlushRequest,
  FsyncRequest,
  GetattrRequest,
  GetxattrRequest,
  LinkRequest,
  ListxattrRequest,
  LockRequest,
  LookupRequest,
  LseekRequest,
  MkdirRequest,
  MknodRequest,
  OpenRequest,
  ReadlinkRequest,
  ReadRequest,
  ReleaseRequest,
  RemovexattrRequest,
  RenameRequest,
  RmdirRequest,
  SetattrRequest,
  SetxattrRequest,
  StatfsRequest,
  SymlinkRequest,
  SyncfsRequest,
  UnlinkRequest,
  WriteRequest,
} from './requests.js';
import type { AttrOut, DirentWriter, EntryOut, FileLock, OpenOut, StatfsOut } from './replies.js';
import type { FuseSession } from './session.js';

/**
 * Returned by a handler that will answer later through
 * `session.complete(unique, ...)` (still on the FUSE thread, e.g. from
 * onMessage). Allowed for SETATTR (then session.completeAttr), SETLK, SETLKW, WRITE, FSYNC, FSYNCDIR, FLUSH,
 * UNLINK, RMDIR, RENAME; the request object is reused after the call, so
 * keep `req.header.unique` and whatever else you need.
 */
export const DEFERRED: unique symbol = Symbol('fuse.deferred');
export type Deferred = typeof DEFERRED;

/** What INIT negotiated. */
export interface ConnInfo {
  /** Protocol version in use (7.x). */
  readonly major: number;
  readonly minor: number;
  /** The kernel's own minor version. */
  readonly kernelMinor: number;
  /** INIT flags the kernel offered. */
  readonly kernelFlags: number;
  /** INIT flags in force (offered ∩ wanted). */
  readonly flags: number;
  readonly maxWrite: number;
  readonly maxReadahead: number;
  readonly maxPages: number;
}

export interface FuseHandler {
  /** After INIT was answered. The session stays valid for the handler's lifetime. */
  init?(session: FuseSession, conn: ConnInfo): void;
  /** DESTROY, or the end of the session (unmount). */
  destroy?(): void;
  /** A message the main thread posted (drained before and after every request). */
  onMessage?(msg: unknown): void;
  /** The notifier wrote every notice queued up to and including `seq` (see NoticeQueue). */
  onNoticesWritten?(seq: number): void;
  /**
   * After every request (and every wake-up) once the messages are drained,
   * before queued notices are sent: retry work that waits for a state other
   * requests change (e.g. locks being released). Keep it cheap.
   */
  afterRequest?(): void;

  /** Fill `out`; nodeid 0 with entryValid > 0 is a cached negative entry. */
  lookup?(req: LookupRequest, out: EntryOut): void;
  /** No reply is sent. Also called once per entry of BATCH_FORGET. */
  forget?(ino: number, nlookup: number): void;
  getattr?(req: GetattrRequest, out: AttrOut): void;
  setattr?(req: SetattrRequest, out: AttrOut): void | Deferred;
  readlink?(req: ReadlinkRequest): string;
  symlink?(req: SymlinkRequest, out: EntryOut): void;
  mknod?(req: MknodRequest, out: EntryOut): void;
  mkdir?(req: MkdirRequest, out: EntryOut): void;
  unlink?(req: UnlinkRequest): void | Deferred;
  rmdir?(req: RmdirRequest): void | Deferred;
  /** RENAME and RENAME2 (req.flags: RENAME_NOREPLACE=1, EXCHANGE=2, WHITEOUT=4). */
  rename?(req: RenameRequest): void | Deferred;
  link?(req: LinkRequest, out: EntryOut): void;
  open?(req: OpenRequest, out: OpenOut): void;
  /**
   * Copy up to req.size bytes at req.offset into `buf` starting at `bufOffset`
   * (the reply buffer itself: no copy); return the count (short = EOF).
   */
  read?(req: ReadRequest, buf: Buffer, bufOffset: number): number;
  /** Return the number of bytes written (or DEFERRED, then session.completeWrite; req.data is gone after the call). */
  write?(req: WriteRequest): number | Deferred;
  statfs?(req: StatfsRequest, out: StatfsOut): void;
  release?(req: ReleaseRequest): void;
  fsync?(req: FsyncRequest): void | Deferred;
  /** Every close() of a descriptor: POSIX locks of req.lockOwner on this file end here. */
  flush?(req: FlushRequest): void | Deferred;
  setxattr?(req: SetxattrRequest): void;
  /** The attribute's value (the session answers size queries and ERANGE). */
  getxattr?(req: GetxattrRequest): Buffer;
  /** NUL-separated names. */
  listxattr?(req: ListxattrRequest): Buffer;
  removexattr?(req: RemovexattrRequest): void;
  opendir?(req: OpenRequest, out: OpenOut): void;
  readdir?(req: ReadRequest, out: DirentWriter): void;
  /** Entries with a nodeid count as lookups (not for "." and ".."). */
  readdirplus?(req: ReadRequest, out: DirentWriter): void;
  releasedir?(req: ReleaseRequest): void;
  fsyncdir?(req: FsyncRequest): void | Deferred;
  /** F_GETLK: `out` starts as the request's range with type F_UNLCK; fill a conflicting lock. */
  getlk?(req: LockRequest, out: FileLock): void;
  /** F_SETLK and F_SETLKW (req.opcode); may return DEFERRED (then session.complete). */
  setlk?(req: LockRequest): void | Deferred;
  /** INTERRUPT of a deferred request: return true to have it answered EINTR. */
  interrupt?(unique: number): boolean;
  access?(req: AccessRequest): void;
  create?(req: CreateRequest, entry: EntryOut, open: OpenOut): void;
  bmap?(req: BmapRequest): number;
  fallocate?(req: FallocateRequest): void;
  /** Return the resulting offset. */
  lseek?(req: LseekRequest): number;
  /** Return the number of bytes copied. */
  copyFileRange?(req: CopyFileRangeRequest): number;
  syncfs?(req: SyncfsRequest): void;
}
