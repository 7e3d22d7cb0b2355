/**
 * A passthrough file system over a source folder: every request is answered
 * with synchronous I/O on the backing files (never on the mount itself).
 * Complete enough for SQLite (locks, shared mmap of -shm, fsync) and for
 * everyday tools. File handles are the backing descriptors.
 */
import {
  accessSync,
  closeSync,
  constants as fsc,
  fchmodSync,
  fchownSync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  futimesSync,
  chmodSync,
  chownSync,
  utimesSync,
  linkSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  renameSync,
  rmdirSync,
  statfsSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeSync,
  type Dirent,
  type Stats,
} from 'node:fs';
import {
  DirentType,
  FUSE_GETATTR_FH,
  FUSE_FSYNC_FDATASYNC,
  FUSE_LK_FLOCK,
  FUSE_RELEASE_FLOCK_UNLOCK,
  FUSE_ROOT_ID,
  OpenFlag,
  Opcode,
  S_IFMT,
  S_IFREG,
  SetattrValid,
  Whence,
} from '../abi.js';
import { Errno, FuseError, errorCode } from '../errors.js';
import { DEFERRED, type ConnInfo, type Deferred, type FuseHandler } from '../handler.js';
import type { NoticeQueue } from '../notices.js';
import { attrFromStats, statfsFromStatsFs, type AttrOut, type DirentWriter, type EntryOut, type FileLock, type OpenOut, type StatfsOut } from '../replies.js';
import type {
  AccessRequest,
  CreateRequest,
  FallocateRequest,
  FlushRequest,
  FsyncRequest,
  GetattrRequest,
  LinkRequest,
  LockRequest,
  LookupRequest,
  LseekRequest,
  MkdirRequest,
  MknodRequest,
  OpenRequest,
  ReadlinkRequest,
  ReadRequest,
  ReleaseRequest,
  RenameRequest,
  RmdirRequest,
  SetattrRequest,
  StatfsRequest,
  SymlinkRequest,
  UnlinkRequest,
  WriteRequest,
} from '../requests.js';
import type { FuseSession } from '../session.js';
import { InodeTable } from './inodes.js';
import { InodeLocks } from './locks.js';

export interface PassthroughOptions {
  /** The folder to expose. */
  readonly source: string;
  /** Seconds the kernel caches attributes (default 1). */
  readonly attrTimeout?: number;
  /** Seconds the kernel caches names (default 1). */
  readonly entryTimeout?: number;
  /** Seconds the kernel caches "no such name" (default 1; 0 = do not cache). */
  readonly negativeTimeout?: number;
  /** FOPEN_KEEP_CACHE on open: keep cached pages across opens (default false). */
  readonly keepCache?: boolean;
}

/** Messages the passthrough answers (test hooks for the wake and notifier paths). */
export type PassthroughMessage =
  | { readonly type: 'ping'; readonly id: number }
  | { readonly type: 'inval-inode'; readonly path: string; readonly off: number; readonly len: number; readonly id: number }
  | { readonly type: 'stats'; readonly id: number };

/** Where the passthrough posts replies to PassthroughMessage. */
export type Post = (msg: unknown) => void;

/** FUSE_UNKNOWN_INO: plain READDIR entries carry no real inode number. */
const UNKNOWN_INO = 0xffffffff;
const RENAME_NOREPLACE = 1;

interface DirHandle {
  readonly ino: number;
  entries: Dirent[];
  /** Set once a READDIR was served: a later one at offset 0 is a rewinddir and re-reads. */
  served: boolean;
}

/** Directory handles live far above any descriptor number, so the two never collide. */
const DIR_HANDLE_BASE = 2 ** 40;

export class PassthroughFs implements FuseHandler {
  private readonly inodes: InodeTable;
  private readonly locks: InodeLocks;
  private readonly attrTimeout: number;
  private readonly entryTimeout: number;
  private readonly negativeTimeout: number;
  private readonly keepCache: boolean;
  private readonly dirs = new Map<number, DirHandle>();
  /**
   * Lock owners that took locks through each file handle, until that owner's
   * next FLUSH. What is left at RELEASE are open-file-description (OFD)
   * locks: their owner is the file, whose close sends a FLUSH for the
   * process instead, so RELEASE is where they must end. A process's own
   * (classic POSIX) locks always end at its FLUSH first, so RELEASE, which
   * can arrive late, never drops a lock taken since.
   */
  private readonly handleOwners = new Map<number, { readonly ino: number; readonly owners: Set<bigint> }>();
  private nextDirHandle = DIR_HANDLE_BASE;
  private session: FuseSession | undefined;
  /** Notice sequence numbers we owe a 'notices-written' message for, with the message id. */
  private readonly noticeAcks: { seq: number; id: number }[] = [];
  private readonly isRoot = process.getuid?.() === 0;

  constructor(
    opts: PassthroughOptions,
    private readonly post: Post = () => {},
    private readonly notices?: NoticeQueue,
  ) {
    this.inodes = new InodeTable(opts.source);
    this.attrTimeout = opts.attrTimeout ?? 1;
    this.entryTimeout = opts.entryTimeout ?? 1;
    this.negativeTimeout = opts.negativeTimeout ?? 1;
    this.keepCache = opts.keepCache === true;
    this.locks = new InodeLocks((unique) => this.session?.complete(unique, 0));
  }

  init(session: FuseSession, _conn: ConnInfo): void {
    this.session = session;
  }

  onMessage(raw: unknown): void {
    const msg = raw as PassthroughMessage;
    switch (msg.type) {
      case 'ping':
        this.post({ type: 'pong', id: msg.id });
        return;
      case 'stats':
        this.post({ type: 'stats', id: msg.id, ...this.stats() });
        return;
      case 'inval-inode': {
        // Test hook: queue an invalidation from the FUSE thread itself; the
        // notifier writes it and the session reports it via onNoticesWritten.
        if (this.notices === undefined) return;
        const st = lstatSync(this.inodes.childPath(FUSE_ROOT_ID, msg.path));
        const seq = this.notices.invalInode(this.inodes.nodeIdOf(st), msg.off, msg.len, true);
        this.noticeAcks.push({ seq, id: msg.id });
        return;
      }
    }
  }

  /** Inodes the kernel holds, inodes with locks or waiters, open directory handles. */
  stats(): { inodes: number; lockedInodes: number; dirs: number } {
    return { inodes: this.inodes.size, lockedInodes: this.locks.activeInodes, dirs: this.dirs.size };
  }

  onNoticesWritten(seq: number): void {
    while (this.noticeAcks.length > 0 && this.noticeAcks[0]!.seq <= seq) {
      const a = this.noticeAcks.shift()!;
      this.post({ type: 'notices-written', id: a.id, seq: a.seq });
    }
  }

  lookup(req: LookupRequest, out: EntryOut): void {
    const parent = req.header.nodeid;
    const st = lstatSync(this.inodes.childPath(parent, req.name), { throwIfNoEntry: false });
    if (st === undefined) {
      if (this.negativeTimeout <= 0) throw new FuseError(Errno.ENOENT);
      out.nodeid = 0;
      out.entryValid = this.negativeTimeout;
      return;
    }
    this.fillEntry(st, parent, req.name, out);
  }

  forget(ino: number, nlookup: number): void {
    this.inodes.forget(ino, nlookup);
  }

  destroy(): void {
    this.inodes.close();
  }

  getattr(req: GetattrRequest, out: AttrOut): void {
    const ino = req.header.nodeid;
    // From a descriptor either way: attributes of the inode itself, also after its name was unlinked.
    const st = (req.getattrFlags & FUSE_GETATTR_FH) !== 0 ? fstatSync(req.fh) : this.inodes.stat(ino);
    attrFromStats(st, out.attr, ino);
    out.attrValid = this.attrTimeout;
  }

  setattr(req: SetattrRequest, out: AttrOut): void {
    const ino = req.header.nodeid;
    const v = req.valid;
    const fd = (v & SetattrValid.FH) !== 0 ? req.fh : -1;
    // The /proc magic link reaches the inode itself; a symlink needs its real
    // path and the l* calls, which do not follow it.
    const link = this.inodes.isSymlink(ino);
    const path = link ? this.inodes.realPath(ino) : this.inodes.path(ino);
    if ((v & SetattrValid.MODE) !== 0) {
      if (fd >= 0) fchmodSync(fd, req.mode & 0o7777);
      else if (!link) chmodSync(path, req.mode & 0o7777);
    }
    if ((v & (SetattrValid.UID | SetattrValid.GID)) !== 0) {
      const uid = (v & SetattrValid.UID) !== 0 ? req.uid : -1;
      const gid = (v & SetattrValid.GID) !== 0 ? req.gid : -1;
      if (fd >= 0) fchownSync(fd, uid, gid);
      else if (link) lchownSync(path, uid, gid);
      else chownSync(path, uid, gid);
    }
    if ((v & SetattrValid.SIZE) !== 0) {
      if (fd >= 0) ftruncateSync(fd, req.size);
      else truncateSync(path, req.size);
    }
    if ((v & (SetattrValid.ATIME | SetattrValid.MTIME | SetattrValid.ATIME_NOW | SetattrValid.MTIME_NOW)) !== 0) {
      const cur = fd >= 0 ? fstatSync(fd) : this.inodes.stat(ino);
      const now = Date.now() / 1000;
      const atime =
        (v & SetattrValid.ATIME_NOW) !== 0 ? now : (v & SetattrValid.ATIME) !== 0 ? req.atime + req.atimeNsec / 1e9 : cur.atimeMs / 1000;
      const mtime =
        (v & SetattrValid.MTIME_NOW) !== 0 ? now : (v & SetattrValid.MTIME) !== 0 ? req.mtime + req.mtimeNsec / 1e9 : cur.mtimeMs / 1000;
      if (fd >= 0) futimesSync(fd, atime, mtime);
      else if (link) lutimesSync(path, atime, mtime);
      else utimesSync(path, atime, mtime);
    }
    const st = fd >= 0 ? fstatSync(fd) : this.inodes.stat(ino);
    attrFromStats(st, out.attr, ino);
    out.attrValid = this.attrTimeout;
  }

  readlink(req: ReadlinkRequest): string {
    return readlinkSync(this.inodes.realPath(req.header.nodeid));
  }

  symlink(req: SymlinkRequest, out: EntryOut): void {
    const parent = req.header.nodeid;
    const path = this.inodes.childPath(parent, req.name);
    symlinkSync(req.target, path);
    this.giveAway(path, req.header.uid, req.header.gid, true);
    this.fillEntry(lstatSync(path), parent, req.name, out);
  }

  mknod(req: MknodRequest, out: EntryOut): void {
    // Node cannot mknod devices or FIFOs; regular files are all SQLite and tools need.
    if ((req.mode & S_IFMT) !== S_IFREG && (req.mode & S_IFMT) !== 0) throw new FuseError(Errno.EPERM);
    const parent = req.header.nodeid;
    const path = this.inodes.childPath(parent, req.name);
    const fd = openSync(path, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, req.mode & 0o7777);
    try {
      this.fixNewFile(fd, req.mode, req.header.uid, req.header.gid);
    } finally {
      closeSync(fd);
    }
    this.fillEntry(lstatSync(path), parent, req.name, out);
  }

  mkdir(req: MkdirRequest, out: EntryOut): void {
    const parent = req.header.nodeid;
    const path = this.inodes.childPath(parent, req.name);
    mkdirSync(path, req.mode & 0o7777);
    // The daemon's own umask applied again in mkdir(2); the kernel already applied the caller's.
    chmodSync(path, req.mode & 0o7777);
    this.giveAway(path, req.header.uid, req.header.gid, false);
    this.fillEntry(lstatSync(path), parent, req.name, out);
  }

  unlink(req: UnlinkRequest): void {
    unlinkSync(this.inodes.childPath(req.header.nodeid, req.name));
  }

  rmdir(req: RmdirRequest): void {
    rmdirSync(this.inodes.childPath(req.header.nodeid, req.name));
  }

  rename(req: RenameRequest): void {
    const from = this.inodes.childPath(req.header.nodeid, req.name);
    const to = this.inodes.childPath(req.newdir, req.newName);
    if ((req.flags & ~RENAME_NOREPLACE) !== 0) throw new FuseError(Errno.EINVAL); // EXCHANGE, WHITEOUT
    if ((req.flags & RENAME_NOREPLACE) !== 0 && lstatSync(to, { throwIfNoEntry: false }) !== undefined) {
      throw new FuseError(Errno.EEXIST);
    }
    renameSync(from, to);
    // Inodes held by descriptor need nothing; one kept by name follows it.
    const st = lstatSync(to, { throwIfNoEntry: false });
    if (st !== undefined) this.inodes.moved(st, req.newdir, req.newName);
  }

  link(req: LinkRequest, out: EntryOut): void {
    const path = this.inodes.childPath(req.header.nodeid, req.newName);
    // link(2) does not follow the /proc magic link: use the inode's real path.
    linkSync(this.inodes.realPath(req.oldNodeid), path);
    this.fillEntry(lstatSync(path), req.header.nodeid, req.newName, out);
  }

  open(req: OpenRequest, out: OpenOut): void {
    // O_CREAT/O_EXCL never mean anything here (CREATE does that); O_NOCTTY is
    // irrelevant; O_NOFOLLOW was the kernel's business and would refuse the
    // /proc magic link.
    const flags = req.flags & ~(fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOCTTY | fsc.O_NOFOLLOW);
    out.fh = openSync(this.inodes.path(req.header.nodeid), flags);
    out.openFlags = this.keepCache ? OpenFlag.KEEP_CACHE : 0;
  }

  read(req: ReadRequest, buf: Buffer, bufOffset: number): number {
    // Straight into the reply buffer: no copy.
    return readSync(req.fh, buf, bufOffset, req.size, req.offset);
  }

  write(req: WriteRequest): number {
    return writeSync(req.fh, req.data, 0, req.data.length, req.offset);
  }

  statfs(_req: StatfsRequest, out: StatfsOut): void {
    statfsFromStatsFs(statfsSync(this.inodes.root), out);
  }

  flush(req: FlushRequest): void {
    // With FUSE_POSIX_LOCKS the kernel sends no unlock on close: FLUSH is
    // where a process's locks on this file end (POSIX: any close drops them).
    const ino = req.header.nodeid;
    this.locks.releaseOwner(ino, req.lockOwner);
    for (const h of this.handleOwners.values()) if (h.ino === ino) h.owners.delete(req.lockOwner);
  }

  release(req: ReleaseRequest): void {
    const ino = req.header.nodeid;
    if ((req.releaseFlags & FUSE_RELEASE_FLOCK_UNLOCK) !== 0) this.locks.releaseOwner(ino, req.lockOwner);
    const h = this.handleOwners.get(req.fh);
    if (h !== undefined) {
      this.handleOwners.delete(req.fh);
      for (const owner of h.owners) this.locks.releaseOwner(h.ino, owner);
    }
    closeSync(req.fh);
  }

  fsync(req: FsyncRequest): void {
    if ((req.fsyncFlags & FUSE_FSYNC_FDATASYNC) !== 0) fdatasyncSync(req.fh);
    else fsyncSync(req.fh);
  }

  fsyncdir(req: FsyncRequest): void {
    const fd = openSync(this.inodes.path(req.header.nodeid), fsc.O_RDONLY | fsc.O_DIRECTORY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  opendir(req: OpenRequest, out: OpenOut): void {
    const ino = req.header.nodeid;
    const entries = readdirSync(this.inodes.path(ino), { withFileTypes: true });
    const fh = this.nextDirHandle++;
    this.dirs.set(fh, { ino, entries, served: false });
    out.fh = fh;
  }

  readdir(req: ReadRequest, out: DirentWriter): void {
    const d = this.dir(req.fh, req.offset);
    // Offsets: 1 = after ".", 2 = after "..", 3+i = after entries[i].
    for (let off = req.offset; off < d.entries.length + 2; off++) {
      const [name, type] = this.nameAt(d, off);
      const ino = off === 0 ? d.ino : UNKNOWN_INO;
      if (!out.add(ino, name, type, off + 1)) return;
    }
  }

  readdirplus(req: ReadRequest, out: DirentWriter): void {
    const d = this.dir(req.fh, req.offset);
    const dirPath = this.inodes.path(d.ino);
    for (let off = req.offset; off < d.entries.length + 2; off++) {
      const [name, type] = this.nameAt(d, off);
      const e = out.nextEntry();
      if (off < 2) {
        // "." and "..": no entry (nodeid 0), so no lookup count either.
        e.attr.ino = off === 0 ? d.ino : UNKNOWN_INO;
        e.attr.mode = 0o040000;
        if (!out.addPlus(e, name, type, off + 1)) return;
        continue;
      }
      const st = lstatSync(`${dirPath}/${name}`, { throwIfNoEntry: false });
      if (st === undefined) continue; // deleted since opendir
      let nodeid: number;
      try {
        nodeid = this.inodes.remember(st, d.ino, name);
      } catch {
        continue; // replaced or deleted just now
      }
      e.nodeid = nodeid;
      e.entryValid = this.entryTimeout;
      e.attrValid = this.attrTimeout;
      attrFromStats(st, e.attr, nodeid);
      // The kernel takes a reference only for entries it receives: undo the one that did not fit.
      if (!out.addPlus(e, name, type, off + 1)) {
        this.inodes.forget(nodeid, 1);
        return;
      }
    }
  }

  releasedir(req: ReleaseRequest): void {
    this.dirs.delete(req.fh);
  }

  access(req: AccessRequest): void {
    accessSync(this.inodes.path(req.header.nodeid), req.mask);
  }

  create(req: CreateRequest, entry: EntryOut, open: OpenOut): void {
    const parent = req.header.nodeid;
    const path = this.inodes.childPath(parent, req.name);
    const flags = req.flags & ~fsc.O_NOCTTY;
    let fd: number;
    try {
      fd = openSync(path, flags | fsc.O_CREAT | fsc.O_EXCL, req.mode & 0o7777);
      this.fixNewFile(fd, req.mode, req.header.uid, req.header.gid);
    } catch (err) {
      // Created behind the kernel's back since its lookup: open it as it is, unless O_EXCL was asked.
      if (errorCode(err) !== 'EEXIST' || (req.flags & fsc.O_EXCL) !== 0) throw err;
      fd = openSync(path, flags & ~fsc.O_CREAT);
    }
    try {
      this.fillEntry(fstatSync(fd), parent, req.name, entry, fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    open.fh = fd;
    open.openFlags = this.keepCache ? OpenFlag.KEEP_CACHE : 0;
  }

  fallocate(req: FallocateRequest): void {
    // Mode 0 only: make sure [offset, offset+length) exists. No holes to punch or keep.
    if (req.mode !== 0) throw new FuseError(Errno.EOPNOTSUPP);
    const end = req.offset + req.length;
    if (fstatSync(req.fh).size < end) ftruncateSync(req.fh, end);
  }

  lseek(req: LseekRequest): number {
    const size = fstatSync(req.fh).size;
    switch (req.whence) {
      case Whence.DATA:
        // No holes: data is wherever the file is.
        if (req.offset >= size) throw new FuseError(Errno.ENXIO);
        return req.offset;
      case Whence.HOLE:
        if (req.offset >= size) throw new FuseError(Errno.ENXIO);
        return size;
      case Whence.SET:
        return req.offset;
      case Whence.END:
        return size + req.offset;
      default:
        throw new FuseError(Errno.EINVAL);
    }
  }

  getlk(req: LockRequest, out: FileLock): void {
    if ((req.lkFlags & FUSE_LK_FLOCK) !== 0) throw new FuseError(Errno.ENOSYS);
    if (req.type !== 0 && req.type !== 1) return;
    const c = this.locks.test(req.header.nodeid, req.owner, req.type, req.start, req.end);
    if (c === null) return;
    out.type = c.type;
    out.start = c.start;
    out.end = c.end;
    out.pid = c.pid;
  }

  setlk(req: LockRequest): void | Deferred {
    if ((req.lkFlags & FUSE_LK_FLOCK) !== 0) throw new FuseError(Errno.ENOSYS);
    const type = req.type;
    if (type !== 0 && type !== 1 && type !== 2) throw new FuseError(Errno.EINVAL);
    if (!(req.start >= 0) || !(req.end >= req.start)) throw new FuseError(Errno.EINVAL);
    const ino = req.header.nodeid;
    if (type !== 2) this.noteHandleOwner(req.fh, ino, req.owner);
    if (req.opcode === Opcode.SETLKW && type !== 2) {
      if (this.locks.setOrWait(ino, req.owner, req.pid, type, req.start, req.end, req.header.unique)) return;
      return DEFERRED;
    }
    if (!this.locks.trySet(ino, req.owner, req.pid, type, req.start, req.end)) throw new FuseError(Errno.EAGAIN);
  }

  private noteHandleOwner(fh: number, ino: number, owner: bigint): void {
    let h = this.handleOwners.get(fh);
    if (h === undefined || h.ino !== ino) {
      h = { ino, owners: new Set() };
      this.handleOwners.set(fh, h);
    }
    h.owners.add(owner);
  }

  interrupt(unique: number): boolean {
    return this.locks.cancel(unique);
  }

  /** The handle of a READDIR(PLUS); a new pass from offset 0 sees the folder as it is now. */
  private dir(fh: number, offset: number): DirHandle {
    const d = this.dirs.get(fh);
    if (d === undefined) throw new FuseError(Errno.EBADF);
    if (offset === 0 && d.served) d.entries = readdirSync(this.inodes.path(d.ino), { withFileTypes: true });
    d.served = true;
    return d;
  }

  private nameAt(d: DirHandle, off: number): [string, number] {
    if (off === 0) return ['.', DirentType.DIR];
    if (off === 1) return ['..', DirentType.DIR];
    const e = d.entries[off - 2]!;
    return [e.name, direntType(e)];
  }

  private fillEntry(st: Stats, parent: number, name: string, out: EntryOut, viaFd = -1): void {
    const nodeid = this.inodes.remember(st, parent, name, viaFd);
    out.nodeid = nodeid;
    out.generation = 0;
    out.entryValid = this.entryTimeout;
    out.attrValid = this.attrTimeout;
    attrFromStats(st, out.attr, nodeid);
  }

  /** A new file: the mode the caller asked for (our umask applied again) and the caller as owner. */
  private fixNewFile(fd: number, mode: number, uid: number, gid: number): void {
    fchmodSync(fd, mode & 0o7777);
    if (this.isRoot && (uid !== 0 || gid !== 0)) fchownSync(fd, uid, gid);
  }

  private giveAway(path: string, uid: number, gid: number, isLink: boolean): void {
    if (!this.isRoot || (uid === 0 && gid === 0)) return;
    if (isLink) lchownSync(path, uid, gid);
    else chownSync(path, uid, gid);
  }
}

function direntType(e: Dirent): number {
  if (e.isFile()) return DirentType.REG;
  if (e.isDirectory()) return DirentType.DIR;
  if (e.isSymbolicLink()) return DirentType.LNK;
  if (e.isFIFO()) return DirentType.FIFO;
  if (e.isSocket()) return DirentType.SOCK;
  if (e.isCharacterDevice()) return DirentType.CHR;
  if (e.isBlockDevice()) return DirentType.BLK;
  return DirentType.UNKNOWN;
}
