/**
 * The LiteFS file system (ref §4): maps FUSE requests on the mount root onto
 * the store. Thin on purpose: names, modes, handles and errno live here;
 * what a write or an unlock means for a database lives in src/store/.
 *
 * Inodes: root 1, `.lag` 2, `.primary` 3, and for the i-th database seen 16 + 8i + k,
 * k the index of the file kind (names.ts). Stable for the daemon's lifetime
 * (LiteFS hashes names instead; nothing depends on the numbers).
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc, statSync, statfsSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { DirentType, FUSE_FSYNC_FDATASYNC, FUSE_LK_FLOCK, FUSE_ROOT_ID, OpenFlag, Opcode, S_IFDIR, S_IFREG, SetattrValid } from '../fuse/abi.js';
import { Errno, FuseError } from '../fuse/errors.js';
import { DEFERRED, type Deferred, type FuseHandler } from '../fuse/handler.js';
import type { FuseSession } from '../fuse/session.js';
import type { NoticeQueue } from '../fuse/notices.js';
import { newAttrOut, statfsFromStatsFs, type AttrOut, type Attr, type DirentWriter, type EntryOut, type FileLock, type OpenOut, type StatfsOut } from '../fuse/replies.js';
import type {
  CreateRequest,
  FlushRequest,
  FsyncRequest,
  GetattrRequest,
  LockRequest,
  LookupRequest,
  OpenRequest,
  ReadRequest,
  ReleaseRequest,
  SetattrRequest,
  StatfsRequest,
  UnlinkRequest,
  WriteRequest,
} from '../fuse/requests.js';
import { formatHex16 } from '../ltx/index.js';
import { HALT_BYTE, WAL_FRAME_HEADER_SIZE, databaseLocksInRange, shmLocksInRange } from '../sqlite/index.js';
import { type JournalFinalize, commitJournal, stageJournalCommit } from '../store/commit-journal.js';
import { commitWAL, stageWALCommit } from '../store/commit-wal.js';
import { type PendingWrite, type StagedTx, completedCommitFrame } from '../store/forward.js';
import { type DB, isPersistCommit } from '../store/db.js';
import { dropDB } from '../store/drop.js';
import { DatabaseExistsError, InvalidWriteError } from '../store/errors.js';
import { CommitFencedError } from '../store/fence.js';
import { isErrno } from '../store/io.js';
import { LockQuery, SHM_LOCKS, type LockMask, fromDatabaseLocks, fromShmLocks } from '../store/locks.js';
import type { ApplyResult } from '../store/apply.js';
import type { ApplyCommand, GroupSyncJob, HaltHoldCommand, StatusCommand, StoreCommandResult, StoreEvent } from '../store/messages.js';
import type { StepDownResult } from '../store/step-down.js';
import type { Store } from '../store/store.js';
import { handleCommand, isStoreCommand } from './commands.js';
import { ImageHolds } from './image-holds.js';
import type { EventOutbox } from './event-outbox.js';
import { HaltForwarding, type HaltHolder } from './halt-forwarding.js';
import { HaltGuards } from './halt-guards.js';
import { FILE_KINDS, type FileKind, LAG_NAME, PRIMARY_NAME, fileName, parseName } from './names.js';
import { ParkedLocks } from './parked-locks.js';
import { ReplicaApplier, conflictsWithWriteSet } from './replica-apply.js';
import { StepDownRecovery, heldBy } from './step-down.js';

const LAG_INO = 2;
const PRIMARY_INO = 3;
const DB_INO_BASE = 16;
const KINDS_PER_DB = 8;
/** `%016x/%016x\n` */
const POS_SIZE = 34;
/** `.lag` is always 11 bytes in LiteFS (`%+010d\n` of a lag that fits). */
const LAG_SIZE = 11;
/** What `.lag` shows before a replica's first sync (LiteFS: math.MaxInt32). */
const LAG_NOT_SYNCED = 2147483647;
/** Seconds the kernel may keep a name. */
const ENTRY_TIMEOUT = 1;
/**
 * Seconds the kernel may keep the attributes of a database's files. LiteFS
 * caches none (attr.Valid = 0), which costs SQLite a GETATTR round trip per
 * read transaction. They can be cached: every change to these files comes
 * through this mount (the kernel updates the size itself), except the
 * store's own rewrites (replica apply, step-down, import), and each of those
 * sends an inode notice, which drops the cached attributes too. The virtual
 * files (`-pos`, `.lag`, `.primary`) change with no request and stay uncached.
 */
const DB_FILE_ATTR_TIMEOUT = 1;

const F_RDLCK = 0;
const F_WRLCK = 1;
const F_UNLCK = 2;

/** What an inode is. */
type Node = { readonly kind: 'root' } | { readonly kind: 'lag' } | { readonly kind: 'primary' } | { readonly kind: FileKind; readonly db: DB };

/** A database file with a backing file in the data directory (not a generated one). */
type BackedNode = { readonly kind: Exclude<FileKind, 'pos' | 'lock'>; readonly db: DB };

function hasBackingFile(node: Node): node is BackedNode {
  return node.kind === 'database' || node.kind === 'journal' || node.kind === 'wal' || node.kind === 'shm';
}

/** One name of the root's listing: name, inode, dirent type. */
type RootEntry = [name: string, ino: number, type: number];

interface Handle {
  readonly node: Node;
  /** Descriptor of the backing file in the data directory; -1 for generated files. */
  readonly fd: number;
  /** A `<db>-lock` handle's HALT lock id (random, 63 bits, never 0: ref §8.3). */
  readonly lockID?: bigint;
}

export class LiteFS implements FuseHandler {
  private readonly inoOf = new Map<string, number>();
  /** `-pos` inodes the kernel has looked up: only those can have cached pages to invalidate. */
  private readonly posLookedUp = new Set<number>();
  /** The kernel looked up `.lag` (it may cache its contents). */
  private lagLookedUp = false;
  private readonly dbAt: DB[] = [];
  private readonly handles = new Map<number, Handle>();
  /** An open root directory's listing, made at its first READDIR (offset 0) and kept until RELEASEDIR. */
  private readonly listings = new Map<number, RootEntry[]>();
  private nextFh = 1;
  private readonly uid = process.getuid?.() ?? 0;
  private readonly gid = process.getgid?.() ?? 0;
  /** Set by the `status` command; a replica refuses every write (ARCHITECTURE §2). */
  private role: 'primary' | 'replica';
  private primaryHostname = '';
  /** ms since the epoch of the primary's last heartbeat or LTX; 0 = this node is primary; -1 = never synced. */
  private primaryTimestamp = 0;
  /** `<file>\0<operation>` refusals already logged: one line each, not one per request. */
  private readonly refusalsLogged = new Set<string>();
  private readonly applier: ReplicaApplier;
  private readonly stepDown: StepDownRecovery;
  /** The last `writeDeadline` (null = none); a new one starts a new term of fence logging. */
  private writeDeadline: number | null = null;
  /** `<db>\0<kind>` fence refusals already logged in this term. */
  private readonly fenceLogged = new Set<string>();
  /** For answering parked lock requests (set at INIT). */
  private session: FuseSession | null = null;
  private readonly parked = new ParkedLocks();
  /** Primary: HALT locks held for replicas. */
  private readonly guards: HaltGuards;
  /** Read lock sets the main thread holds while it copies a database for a snapshot or an export. */
  private readonly images: ImageHolds;
  /** Replica: the HALT locks this node holds on the primary, and its forwarded commits. */
  private readonly halt: HaltForwarding;
  /**
   * Per database, the end of a WAL commit frame the primary refused. The
   * kernel may split SQLite's page write in two; after a refused tail it
   * reports a short write and SQLite writes the tail again, which must be
   * refused again. Forgotten once SQLite writes at or before the frame.
   */
  private readonly refusedFrameEnds = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly post: (event: StoreEvent) => void,
    private readonly log: (line: string) => void,
    private readonly notices?: NoticeQueue,
    /** How store events reach the main thread; the `txEvents` and `flushTx` commands steer it. */
    private readonly outbox?: EventOutbox,
  ) {
    this.role = store.options.startAsReplica === true ? 'replica' : 'primary';
    this.stepDown = new StepDownRecovery({
      post,
      log,
      invalidate: (db, result) => this.invalidateRecovered(db, result),
      written: () => notices?.written() ?? Number.MAX_SAFE_INTEGER,
    });
    this.applier = new ReplicaApplier({
      store,
      post,
      log,
      invalidate: (db, result) => this.invalidateApplied(db, result),
      written: () => notices?.written() ?? Number.MAX_SAFE_INTEGER,
      blocked: (db) => this.stepDown.waiting(db),
      released: (db) => this.answerParked(db),
    });
    this.guards = new HaltGuards(store, (db) => this.answerParked(db));
    this.images = new ImageHolds(store, post, (db) => this.answerParked(db));
    this.halt = new HaltForwarding({
      post,
      log,
      recover: (name) => {
        const db = store.db(name);
        if (db !== undefined && this.role === 'replica') this.stepDown.begin([db]);
      },
      unlink: (path) => {
        try {
          store.io.unlink(path);
        } catch {
          // <data>/tmp is emptied at start-up anyway.
        }
      },
    });
  }

  init(session: FuseSession): void {
    this.session = session;
  }

  /** An interrupted lock request that was parked, or a HALT lock wait, is answered EINTR. */
  interrupt(unique: number): boolean {
    return this.parked.cancel(unique) || this.halt.interrupt(unique);
  }

  /**
   * Commands from the main thread, run between two requests: `import`
   * (src/fs/commands.ts), `apply` (replica-apply.ts), `status` (here),
   * `sync` and `groupSynced` (the group sync on the syncer thread:
   * store/group-sync.ts), `imageHold` and `imageRelease` (image-holds.ts).
   */
  onMessage(msg: unknown): void {
    if (!isStoreCommand(msg)) return;
    if (msg.type === 'apply') this.enqueueApply(msg);
    else if (msg.type === 'status') this.setStatus(msg);
    else if (msg.type === 'haltLock') this.post(this.commandCall(msg.id, () => this.guards.lock(msg)));
    else if (msg.type === 'haltUnlock') this.post(this.guards.unlock(msg));
    else if (msg.type === 'haltHold' || msg.type === 'haltDrop') this.holdHalt(msg);
    else if (msg.type === 'haltGranted') this.halt.granted(msg);
    else if (msg.type === 'haltForwarded') this.halt.forwarded(msg);
    else if (msg.type === 'imageHold') this.images.request(msg);
    else if (msg.type === 'imageRelease') this.images.release(msg);
    else if (msg.type === 'sync') this.postGroupSyncs(this.store.takeGroupSyncs());
    else if (msg.type === 'txEvents') this.outbox?.setPrompt(msg.prompt);
    else if (msg.type === 'flushTx') this.outbox?.flushWindow();
    // The outbox sends every held commit before any other event, this answer included.
    else if (msg.type === 'backupHWM') this.store.setBackupHWM(msg.db, msg.txid === null ? null : BigInt('0x' + msg.txid));
    else if (msg.type === 'txBarrier') this.post({ type: 'commandResult', id: msg.id, status: 'ok', inodes: [] });
    else if (msg.type === 'groupSynced') {
      const next = this.store.groupSyncDone(msg.db, msg.gen, msg.ok);
      if (next !== null) this.postGroupSyncs([next]);
    } else handleCommand(this.store, msg, this.post, (db) => this.inoOf.get(db));
  }

  /** A forwarded transaction (POST /tx) is applied under its HALT lock's write lock set, which must be held. */
  private enqueueApply(cmd: ApplyCommand): void {
    if (cmd.haltLockID === undefined) return this.applier.enqueue(cmd);
    const owner = this.guards.ownerOf(cmd.db, BigInt(cmd.haltLockID));
    if (owner === undefined) {
      this.post({ type: 'commandResult', id: cmd.id, status: 'error', message: `HALT lock ${cmd.haltLockID} is not held on ${cmd.db}` });
      return;
    }
    this.applier.enqueue(cmd, owner);
  }

  /** A command's result, or its error as one. */
  private commandCall(id: number, fn: () => StoreCommandResult): StoreCommandResult {
    try {
      return fn();
    } catch (err) {
      return { type: 'commandResult', id, status: 'error', message: err instanceof Error ? err.message : String(err) };
    }
  }

  private postGroupSyncs(jobs: GroupSyncJob[]): void {
    if (jobs.length > 0) this.post({ type: 'groupSync', jobs });
  }

  /** A waiting step-down recovery or apply may go ahead now that a request released locks. */
  afterRequest(): void {
    this.stepDown.poll();
    this.applier.poll();
    this.images.poll();
  }

  /** A recovery's or applied transaction's invalidations are written: its locks can go. */
  onNoticesWritten(): void {
    this.stepDown.poll();
    this.applier.poll();
  }

  /**
   * Every store event passes here on its way to the main thread. A commit
   * changes `<db>-pos`: drop the kernel's cached copy (ref §4.6) so a reader
   * holding it open sees the new position. The notifier thread writes the
   * notice, never this one (ARCHITECTURE §4).
   */
  onStoreEvent(event: StoreEvent): void {
    if (event.type !== 'tx' || this.notices === undefined) return;
    const base = this.inoOf.get(event.db);
    const pos = base === undefined ? undefined : base + FILE_KINDS.indexOf('pos');
    // Never looked up: the kernel has nothing cached, and a notice for an
    // inode it does not know fails with ENOENT (an exception per commit).
    if (pos === undefined || !this.posLookedUp.has(pos)) return;
    this.notices.invalInode(pos, 0, 0);
  }

  // ---- names and attributes ----

  lookup(req: LookupRequest, out: EntryOut): void {
    if (req.header.nodeid !== FUSE_ROOT_ID) throw new FuseError(Errno.ENOENT);
    const ino = this.inoOfName(req.name);
    const kind = this.node(ino).kind;
    if (kind === 'pos') this.posLookedUp.add(ino);
    else if (kind === 'lag') this.lagLookedUp = true;
    try {
      this.fillAttr(ino, out.attr);
    } catch (err) {
      if (!isMissingJournalOrWal(kind, err)) throw err;
      // In rollback journal mode SQLite asks for both on every read
      // transaction (hot journal check, WAL check): 2 of its 6 requests.
      // Their absence may be cached like a name because only SQLite creates
      // them, through this mount, which replaces the kernel's negative
      // entry; the store only ever removes them (and invalidates the name).
      out.nodeid = 0;
      out.entryValid = ENTRY_TIMEOUT;
      return;
    }
    out.nodeid = ino;
    out.generation = 0;
    out.entryValid = ENTRY_TIMEOUT;
    out.attrValid = this.attrTimeout(ino);
  }

  getattr(req: GetattrRequest, out: AttrOut): void {
    this.fillAttr(req.header.nodeid, out.attr);
    out.attrValid = this.attrTimeout(req.header.nodeid);
  }

  private attrTimeout(ino: number): number {
    return hasBackingFile(this.node(ino)) ? DB_FILE_ATTR_TIMEOUT : 0;
  }

  setattr(req: SetattrRequest, out: AttrOut): void | Deferred {
    const ino = req.header.nodeid;
    const node = this.node(ino);
    // Only the size means anything here (LiteFS ignores modes, owners and times).
    if ((req.valid & SetattrValid.SIZE) !== 0) {
      if (!hasBackingFile(node)) throw new FuseError(Errno.EPERM);
      const size = req.size;
      const db = node.db;
      if (node.kind === 'database' || node.kind === 'journal') this.refuseOnReplica(db.name, node.kind, 'truncate');
      if (node.kind === 'journal') {
        // TRUNCATE journal mode: truncating to 0 is the commit signal.
        if (size !== 0) throw new FuseError(Errno.EINVAL);
        if (this.forwarding(db)) {
          const unique = req.header.unique;
          const held = this.forwardJournal(db, 'truncate', (errno) => (errno === 0 ? this.completeAttr(unique, ino) : this.session?.complete(unique, errno)));
          if (held === DEFERRED) return held;
        } else {
          this.storeCall(() => commitJournal(db, 'truncate'));
        }
      } else {
        this.withFd(req, node, (fd) =>
          this.storeCall(() => {
            if (node.kind === 'database') db.truncateDatabase(fd, size);
            else if (node.kind === 'wal') db.truncateWAL(fd, size);
            else db.io.truncate(fd, size);
          }),
        );
      }
    }
    this.fillAttr(ino, out.attr);
    out.attrValid = this.attrTimeout(ino);
  }

  opendir(_req: OpenRequest, out: OpenOut): void {
    out.fh = this.nextFh++;
    out.openFlags = 0;
  }

  /**
   * The kernel reads a listing in pieces (one READDIR per ~4 KiB of
   * entries, each with the offset to go on from). The listing is made once,
   * when a handle reads from offset 0, and the later pieces come from it: a
   * fresh listing per piece checked three files per database each time,
   * quadratic in the number of databases.
   */
  readdir(req: ReadRequest, out: DirentWriter): void {
    let names = this.listings.get(req.fh);
    if (names === undefined || req.offset === 0) {
      names = this.rootEntries();
      this.listings.set(req.fh, names);
    }
    for (let off = req.offset; off < names.length; off++) {
      const [name, ino, type] = names[off]!;
      if (!out.add(ino, name, type, off + 1)) return;
    }
  }

  releasedir(req: ReleaseRequest): void {
    this.listings.delete(req.fh);
  }

  private rootEntries(): RootEntry[] {
    const names: RootEntry[] = [
      ['.', FUSE_ROOT_ID, DirentType.DIR],
      ['..', FUSE_ROOT_ID, DirentType.DIR],
      [LAG_NAME, LAG_INO, DirentType.REG],
    ];
    if (this.primaryVisible()) names.push([PRIMARY_NAME, PRIMARY_INO, DirentType.REG]);
    // Databases that never committed (page count 0) are not listed (ref §4.2).
    for (const db of this.store.list()) {
      if (db.pageN === 0) continue;
      names.push([db.name, this.inoOfDb(db, 'database'), DirentType.REG]);
      names.push([fileName(db.name, 'pos'), this.inoOfDb(db, 'pos'), DirentType.REG]);
      for (const kind of ['journal', 'shm', 'wal'] as const) {
        if (db.io.exists(this.backingPath(db, kind))) names.push([fileName(db.name, kind), this.inoOfDb(db, kind), DirentType.REG]);
      }
    }
    return names;
  }

  statfs(_req: StatfsRequest, out: StatfsOut): void {
    statfsFromStatsFs(statfsSync(this.store.options.dataDir), out);
  }

  // ---- creating, opening, removing ----

  create(req: CreateRequest, entry: EntryOut, open: OpenOut): void {
    if (req.header.nodeid !== FUSE_ROOT_ID) throw new FuseError(Errno.ENOENT);
    const parsed = parseName(req.name);
    if (parsed === null || req.name === LAG_NAME || req.name === PRIMARY_NAME) throw new FuseError(Errno.EPERM);
    let db: DB;
    if (parsed.kind === 'database') {
      const known = this.store.db(parsed.db);
      // A new database is a write; opening one that exists is not.
      if (known === undefined || known.pageN === 0) this.refuseOnReplica(parsed.db, 'database', 'create');
      db = this.storeCall(() => this.store.createDB(parsed.db));
    } else {
      const known = this.store.db(parsed.db);
      if (known === undefined) throw new FuseError(Errno.ENOENT);
      if (parsed.kind === 'pos' || parsed.kind === 'lock') throw new FuseError(Errno.EPERM);
      // -wal and -shm may be created: readers need them (ref §4.7).
      if (parsed.kind === 'journal') this.refuseOnReplica(parsed.db, 'journal', 'create');
      db = known;
    }
    const path = this.backingPath(db, parsed.kind);
    let fd: number;
    try {
      fd = db.io.open(path, parsed.kind === 'database' ? 'readWrite' : 'createNew');
    } catch (err) {
      // Made since the kernel's lookup: open it as it is, unless O_EXCL was asked.
      if (!isErrno(err, 'EEXIST') || (req.flags & fsc.O_EXCL) !== 0) throw err;
      fd = db.io.open(path, 'readWrite');
    }
    db.entriesUnsynced = true;
    const ino = this.inoOfDb(db, parsed.kind);
    this.fillAttr(ino, entry.attr);
    entry.nodeid = ino;
    entry.entryValid = ENTRY_TIMEOUT;
    entry.attrValid = DB_FILE_ATTR_TIMEOUT;
    open.fh = this.addHandle({ node: { kind: parsed.kind, db }, fd });
    open.openFlags = OpenFlag.KEEP_CACHE;
  }

  open(req: OpenRequest, out: OpenOut): void {
    const node = this.node(req.header.nodeid);
    if (node.kind === 'root') throw new FuseError(Errno.EISDIR);
    if (node.kind === 'lag' || node.kind === 'pos' || node.kind === 'primary') {
      out.fh = this.addHandle({ node, fd: -1 });
      out.openFlags = 0;
      return;
    }
    if (node.kind === 'lock') {
      out.fh = this.addHandle({ node, fd: -1, lockID: randomBytes(8).readBigUInt64BE(0) >> 1n || 1n });
      out.openFlags = 0;
      return;
    }
    // Always read-write, whatever was asked (as LiteFS): the kernel checked access.
    out.fh = this.addHandle({ node, fd: node.db.io.open(this.backingPath(node.db, node.kind), 'readWrite') });
    // Keep the page cache across opens: every change to these files comes
    // through this mount, so the kernel's copy stays right.
    out.openFlags = OpenFlag.KEEP_CACHE;
  }

  release(req: ReleaseRequest): void {
    const h = this.handles.get(req.fh);
    if (h === undefined) return;
    this.handles.delete(req.fh);
    if (h.node.kind === 'lock') this.halt.release(h.node.db.name, lockHolder(req.fh));
    if (h.fd >= 0 && hasBackingFile(h.node)) h.node.db.io.close(h.fd);
  }

  unlink(req: UnlinkRequest): void | Deferred {
    if (req.header.nodeid !== FUSE_ROOT_ID) throw new FuseError(Errno.ENOENT);
    const parsed = parseName(req.name);
    const db = parsed === null ? undefined : this.store.db(parsed.db);
    if (parsed === null || db === undefined) throw new FuseError(Errno.ENOENT);
    if (parsed.kind === 'journal' || parsed.kind === 'wal' || parsed.kind === 'shm') db.entriesUnsynced = true;
    switch (parsed.kind) {
      case 'journal':
        // DELETE journal mode: the unlink is the commit signal.
        if (!db.io.exists(db.journalPath)) throw new FuseError(Errno.ENOENT);
        this.refuseOnReplica(db.name, 'journal', 'unlink');
        if (this.forwarding(db)) {
          const unique = req.header.unique;
          return this.forwardJournal(db, 'delete', (errno) => this.session?.complete(unique, errno));
        }
        this.storeCall(() => commitJournal(db, 'delete'));
        return;
      case 'wal':
        this.storeCall(() => db.removeWAL());
        return;
      case 'shm':
        db.io.unlink(db.shmPath);
        return;
      case 'database':
        if (db.pageN === 0 && !db.io.exists(db.databasePath)) throw new FuseError(Errno.ENOENT);
        this.refuseOnReplica(db.name, 'database', 'unlink');
        this.storeCall(() => dropDB(db));
        return;
      default:
        throw new FuseError(Errno.EPERM);
    }
  }

  // ---- data ----

  read(req: ReadRequest, buf: Buffer, bufOffset: number): number {
    const h = this.handle(req.fh);
    const node = h.node;
    if (node.kind === 'lag') return copyOut(this.lagText(), req.offset, req.size, buf, bufOffset);
    if (node.kind === 'primary') return copyOut(Buffer.from(`${this.primaryHostname}\n`), req.offset, req.size, buf, bufOffset);
    if (node.kind === 'pos') return copyOut(Buffer.from(node.db.posText()), req.offset, req.size, buf, bufOffset);
    if (node.kind === 'lock') return 0;
    if (node.kind === 'root') throw new FuseError(Errno.EISDIR);
    return node.db.io.read(h.fd, buf, req.offset, bufOffset, req.size);
  }

  write(req: WriteRequest): number | Deferred {
    const h = this.handle(req.fh);
    const node = h.node;
    if (node.kind === 'lock') throw new FuseError(Errno.EIO);
    if (!hasBackingFile(node)) throw new FuseError(Errno.EACCES);
    const db = node.db;
    const data = req.data;
    // -shm stays writable on a replica: readers maintain the wal-index.
    if (node.kind !== 'shm') this.refuseOnReplica(db.name, node.kind, 'write');
    if (this.forwarding(db)) {
      const unique = req.header.unique;
      const size = data.length;
      if (node.kind === 'journal' && isPersistCommit(data, req.offset)) {
        const held = this.forwardJournal(db, 'persist', (errno) => (errno === 0 ? this.session?.completeWrite(unique, size) : this.session?.complete(unique, errno)));
        return held ?? size;
      }
      if (node.kind === 'wal') {
        this.checkRefusedFrame(db, req.offset, size);
        const frame = this.storeCall(() => completedCommitFrame(db, h.fd, data, req.offset));
        if (frame !== null) return this.forwardWAL(db, frame, { data: Buffer.from(data), offset: req.offset }, unique);
      }
    }
    this.storeCall(() => {
      switch (node.kind) {
        case 'database':
          db.writeDatabase(h.fd, data, req.offset);
          return;
        case 'journal':
          // PERSIST journal mode (and EXCLUSIVE locking): zeroing the header
          // commits, and commitJournal writes the zeros itself.
          if (isPersistCommit(data, req.offset)) commitJournal(db, 'persist');
          else db.writeJournal(h.fd, data, req.offset);
          return;
        case 'wal':
          db.writeWAL(h.fd, data, req.offset);
          return;
        case 'shm':
          db.io.write(h.fd, data, req.offset);
          return;
      }
    });
    return data.length;
  }

  fsync(req: FsyncRequest): void {
    const h = this.handle(req.fh);
    if (h.fd < 0 || !hasBackingFile(h.node)) return;
    const db = h.node.db;
    if ((req.fsyncFlags & FUSE_FSYNC_FDATASYNC) !== 0) db.io.fdatasync(h.fd);
    else db.io.fsync(h.fd);
    // The journal commit that follows need not fsync the file again.
    if (h.node.kind === 'database') db.databaseUnsynced = false;
  }

  fsyncdir(): void {
    // SQLite's directory sync after creating a journal or WAL: LiteFS makes
    // this a no-op, which lets power loss drop a journal whose database
    // writes survived.
    this.storeCall(() => this.store.syncDatabaseDirs());
  }

  /** Unmount: LTX files of WAL commits and pages of replica applies still waiting for their group sync become durable now. */
  destroy(): void {
    this.store.syncGroups();
  }

  // ---- locks (ref §4.5) ----

  flush(req: FlushRequest): void {
    // With FUSE_POSIX_LOCKS the kernel sends no unlock on close: FLUSH is
    // where an owner's locks on this file end.
    const node = this.node(req.header.nodeid);
    if (node.kind === 'lock') this.halt.release(node.db.name, lockHolder(req.fh));
    if (node.kind === 'database') node.db.locks.releaseDatabaseLocks(req.lockOwner);
    else if (node.kind === 'shm') {
      const db = node.db;
      if (db.locks.releasesWalWrite(req.lockOwner, SHM_LOCKS)) this.commitWAL(db);
      db.locks.releaseShmLocks(req.lockOwner);
    }
    // A lock request of this owner still parked must not be granted after its locks ended.
    if (node.kind === 'database' || node.kind === 'shm') {
      for (const p of this.parked.cancelOwner(node.db.name, req.lockOwner)) this.session?.complete(p.unique, Errno.EAGAIN);
    }
  }

  getlk(req: LockRequest, out: FileLock): void {
    const lockNode = this.haltLockNode(req);
    if (lockNode !== null) {
      // Ref §8.3: a write lock while this node holds the primary's HALT lock.
      if (this.halt.holds(lockNode.db.name)) {
        out.type = F_WRLCK;
        out.pid = 0;
      }
      return;
    }
    const { db, mask } = this.lockTarget(req);
    if (req.type !== F_RDLCK && req.type !== F_WRLCK) return;
    const answer = db.locks.query(req.owner, req.type === F_WRLCK, mask);
    if (answer === LockQuery.UNLOCKED) return;
    out.type = answer;
    // LiteFS reports pid -1; the kernel turns an unknown pid into 0 anyway.
    out.pid = 0;
  }

  /**
   * F_SETLK and F_SETLKW. SQLite never waits for a lock (it polls with its
   * busy handler), so SETLKW is answered like SETLK: EAGAIN if refused.
   * LiteFS answers ENOSYS, which only differs for other programs. Two
   * exceptions: a request that conflicts with a replica apply holding its
   * write lock set, or a writer's EXCLUSIVE that a snapshot's read hold
   * refuses (image-holds.ts), is answered when that is released
   * (parked-locks.ts).
   */
  setlk(req: LockRequest): void | Deferred {
    const lockNode = this.haltLockNode(req);
    if (lockNode !== null) return this.setHaltLock(req, lockNode.db);
    const { db, mask, isShm } = this.lockTarget(req);
    if (req.opcode !== Opcode.SETLK && req.opcode !== Opcode.SETLKW) throw new FuseError(Errno.EINVAL);
    switch (req.type) {
      case F_UNLCK:
        // The WAL commit signal: the LTX file is written before the release,
        // so no checkpoint or writer can come between.
        if (isShm && db.locks.releasesWalWrite(req.owner, mask)) this.commitWAL(db);
        db.locks.unlock(req.owner, mask);
        return;
      case F_RDLCK:
      case F_WRLCK: {
        const exclusive = req.type === F_WRLCK;
        const applyHolds = this.applier.holding(db.name) && conflictsWithWriteSet(db.mode, mask, exclusive, heldBy(db, req.owner));
        if (this.session !== null && (applyHolds || this.images.parks(db, req.owner, mask, exclusive))) {
          this.parked.park(db.name, { unique: req.header.unique, owner: req.owner, mask, exclusive });
          return DEFERRED;
        }
        this.takeLock(db, req.owner, mask, exclusive);
        return;
      }
      default:
        throw new FuseError(Errno.EINVAL);
    }
  }

  /**
   * The HALT lock file's lock (ref §8.3): only a blocking write lock
   * (F_SETLKW / F_OFD_SETLKW) and its unlock. On the primary the lock is a
   * no-op: its own writes need none.
   */
  private setHaltLock(req: LockRequest, db: DB): void | Deferred {
    if (req.type === F_UNLCK) {
      this.halt.release(db.name, lockHolder(req.fh));
      return;
    }
    if (req.opcode !== Opcode.SETLKW || req.type !== F_WRLCK) throw new FuseError(Errno.ENOSYS);
    if (this.role === 'primary' || this.session === null) return;
    const h = this.handle(req.fh);
    const unique = req.header.unique;
    return this.halt.acquire(db.name, lockHolder(req.fh), h.lockID ?? 1n, { unique, done: (errno) => this.session?.complete(unique, errno) });
  }

  /** `haltHold` / `haltDrop`: a HALT lock for a program that asked through the node API (halt-forwarding.ts). */
  private holdHalt(cmd: HaltHoldCommand): void {
    const answer = (errno: number, why?: string): void => {
      if (errno === 0) return this.post({ type: 'commandResult', id: cmd.id, status: 'ok', inodes: [] });
      const message = why ?? (errno === Errno.EAGAIN ? `another program holds the HALT lock of ${cmd.db}` : `the HALT lock ended (errno ${errno})`);
      this.post({ type: 'commandResult', id: cmd.id, status: 'error', message });
    };
    const holder = `api:${cmd.lockID}`;
    if (cmd.type === 'haltDrop') {
      this.halt.release(cmd.db, holder);
      return answer(0);
    }
    if (this.role === 'primary') return answer(0);
    try {
      this.halt.acquire(cmd.db, holder, BigInt(cmd.lockID), { unique: null, done: answer });
    } catch (err) {
      answer(err instanceof FuseError ? err.errno : Errno.EIO);
    }
  }

  /** The `<db>-lock` file a lock request is for (only byte 72 may be locked: EINVAL otherwise), or null for any other file. */
  private haltLockNode(req: LockRequest): { db: DB } | null {
    const node = this.node(req.header.nodeid);
    if (node.kind !== 'lock') return null;
    if ((req.lkFlags & FUSE_LK_FLOCK) !== 0) throw new FuseError(Errno.ENOSYS);
    if (req.start !== HALT_BYTE || req.end !== HALT_BYTE) throw new FuseError(Errno.EINVAL);
    return node;
  }

  /** Grants a read or write lock, or throws EAGAIN. */
  private takeLock(db: DB, owner: bigint, mask: LockMask, exclusive: boolean): void {
    if ((this.applier.waiting(db.name) || this.guards.wants(db.name)) && conflictsWithWriteSet(db.mode, mask, exclusive, heldBy(db, owner))) {
      throw new FuseError(Errno.EAGAIN);
    }
    if (this.stepDown.blocks(db, owner, mask, exclusive)) throw new FuseError(Errno.EAGAIN);
    if (!exclusive) {
      if (!db.locks.tryRLock(owner, mask)) throw new FuseError(Errno.EAGAIN);
      return;
    }
    if (!db.locks.tryLock(owner, mask)) {
      if (db.locks.fencedFor(owner, mask)) this.logFence(db.name, 'lock', `refused (EAGAIN): ${db.name}: new write transaction: lease deadline near`);
      throw new FuseError(Errno.EAGAIN);
    }
  }

  /** An apply or an image hold released `db`'s locks: the lock requests parked meanwhile are decided now. */
  private answerParked(db: DB): void {
    for (const p of this.parked.take(db.name)) {
      let errno = 0;
      try {
        this.takeLock(db, p.owner, p.mask, p.exclusive);
      } catch (err) {
        errno = err instanceof FuseError ? err.errno : Errno.EIO;
      }
      this.session?.complete(p.unique, errno);
    }
  }

  // ---- write forwarding under a HALT lock (halt-forwarding.ts) ----

  /** True when `db`'s commits must reach the primary first: a replica holding its HALT lock. */
  private forwarding(db: DB): boolean {
    return this.role === 'replica' && this.halt.holds(db.name);
  }

  /**
   * A journal finalize under a HALT lock: the transaction is staged and sent
   * to the primary, and the finalize (SQLite's commit point) waits for the
   * answer; `done` answers the request then. A refusal leaves the journal
   * hot: SQLite rolls the transaction back. Nothing to commit (no journal
   * magic, a net no-op): finalized at once, no LTX file (returns undefined).
   */
  private forwardJournal(db: DB, how: JournalFinalize, done: (errno: number) => void): Deferred | undefined {
    const commit = (): void => this.storeCall(() => commitJournal(db, how, { dropNetNoop: true }));
    const staged = this.stage(db, (dir) => stageJournalCommit(db, dir));
    if (staged === null) {
      commit();
      return undefined;
    }
    this.halt.forward(db, staged, (ok) => {
      try {
        if (!ok) return done(Errno.EIO);
        commit();
        this.checkForwarded(db, staged);
        done(0);
      } catch (err) {
        done(err instanceof FuseError ? err.errno : Errno.EIO);
      } finally {
        db.pinnedTimestamp = null;
      }
    });
    return DEFERRED;
  }

  /**
   * The WAL write that would complete a commit frame under a HALT lock: the
   * transaction is staged as if it were written and sent to the primary,
   * and the write is made, and answered, only once the primary applied it.
   * Until then SQLite has acknowledged nothing, and a daemon killed meanwhile
   * leaves an incomplete frame that no one counts. Refused, the write fails
   * with EIO (SQLite rolls back), and its tail written again fails too
   * (refusedFrameEnds). On success the commit itself happens as always, at
   * the release of WAL WRITE, with the same LTX bytes.
   */
  private forwardWAL(db: DB, frame: number, write: PendingWrite, unique: number): Deferred {
    const frameEnd = frame + WAL_FRAME_HEADER_SIZE + db.pageSize;
    const refuse = (): void => {
      db.pinnedTimestamp = null;
      this.refusedFrameEnds.set(db.name, frameEnd);
      // The kernel may have put the refused bytes in its page cache of the WAL.
      this.invalidateWAL(db, write);
    };
    const staged = this.stage(db, (dir) => stageWALCommit(db, dir, write));
    if (staged === null || staged.walEnd !== frameEnd) {
      // The frames after the last commit do not form this transaction (a
      // broken checksum chain): SQLite must not count it committed.
      if (staged !== null) db.io.unlink(staged.path);
      refuse();
      this.log(`refused (EIO): ${db.name}: WAL commit frame at ${frame} does not end a readable transaction`);
      throw new FuseError(Errno.EIO);
    }
    this.halt.forward(db, staged, (ok) => {
      if (!ok) {
        refuse();
        return this.session?.complete(unique, Errno.EIO);
      }
      try {
        this.storeCall(() => this.writeWALAt(db, write));
      } catch (err) {
        // The primary has the transaction and this node cannot write it: the
        // primary's stream brings it back once SQLite here rolled back.
        refuse();
        return this.session?.complete(unique, err instanceof FuseError ? err.errno : Errno.EIO);
      }
      this.session?.completeWrite(unique, write.data.length);
    });
    return DEFERRED;
  }

  /** Stages the pending commit with a pinned header timestamp (kept on success, for the commit's own encoding). */
  private stage(db: DB, fn: (dir: string) => StagedTx | null): StagedTx | null {
    const dir = join(this.store.options.dataDir, 'tmp', 'halt', db.name);
    db.pinnedTimestamp = BigInt(db.ctx.now());
    try {
      const staged = this.storeCall(() => {
        db.io.mkdirp(dir);
        return fn(dir);
      });
      if (staged === null) db.pinnedTimestamp = null;
      return staged;
    } catch (err) {
      db.pinnedTimestamp = null;
      throw err;
    }
  }

  /** EIO for the rest of a refused commit frame written again (refusedFrameEnds). */
  private checkRefusedFrame(db: DB, offset: number, size: number): void {
    const end = this.refusedFrameEnds.get(db.name);
    if (end === undefined) return;
    if (offset + size === end && offset > end - WAL_FRAME_HEADER_SIZE - db.pageSize) throw new FuseError(Errno.EIO);
    if (offset <= end - WAL_FRAME_HEADER_SIZE - db.pageSize) this.refusedFrameEnds.delete(db.name);
  }

  private writeWALAt(db: DB, write: PendingWrite): void {
    const fd = db.io.open(db.walPath, 'readWrite');
    try {
      db.writeWAL(fd, write.data, write.offset);
    } finally {
      db.io.close(fd);
    }
  }

  /** Drops the kernel's cached pages of a WAL range written behind it (or refused). */
  private invalidateWAL(db: DB, write: PendingWrite): void {
    const base = this.inoOf.get(db.name);
    if (base === undefined || this.notices === undefined) return;
    this.notices.invalInode(base + FILE_KINDS.indexOf('wal'), write.offset, write.data.length);
    this.notices.flush();
  }

  /** The local commit must be the transaction the primary applied; a difference is a bug worth a loud line. */
  private checkForwarded(db: DB, staged: StagedTx): void {
    if (db.pos.txid === staged.txid && db.pos.postApplyChecksum === staged.postApply) return;
    this.log(`ERROR ${db.name}: committed ${formatHex16(db.pos.txid)}/${formatHex16(db.pos.postApplyChecksum)} but forwarded ${formatHex16(staged.txid)}/${formatHex16(staged.postApply)}`);
  }

  private completeAttr(unique: number, ino: number): void {
    const out = newAttrOut();
    try {
      this.fillAttr(ino, out.attr);
      out.attrValid = this.attrTimeout(ino);
    } catch {
      return this.session?.complete(unique, Errno.EIO);
    }
    this.session?.completeAttr(unique, out);
  }

  // ---- internals ----

  private lockTarget(req: LockRequest): { db: DB; mask: LockMask; isShm: boolean } {
    if ((req.lkFlags & FUSE_LK_FLOCK) !== 0) throw new FuseError(Errno.ENOSYS);
    const node = this.node(req.header.nodeid);
    if (node.kind === 'database') return { db: node.db, mask: fromDatabaseLocks(databaseLocksInRange(req.start, req.end)), isShm: false };
    if (node.kind === 'shm') return { db: node.db, mask: fromShmLocks(shmLocksInRange(req.start, req.end)), isShm: true };
    throw new FuseError(Errno.ENOSYS);
  }

  /**
   * SQLite already considers the transaction committed when it releases
   * WRITE, and an unlock cannot report failure usefully: a failed WAL commit
   * stops the daemon (as LiteFS's exit 99); start-up recovery trims the WAL
   * back to the last LTX file.
   */
  private commitWAL(db: DB): void {
    try {
      const pos = db.pos;
      // On a replica a WAL frame cannot be written, but a writer that wrote
      // its commit frame as primary may release WRITE after the step-down:
      // SQLite already reported it committed, so it is kept (never lost
      // silently); the main thread sees its `tx` and settles the
      // divergence with the new primary (ARCHITECTURE §3.1).
      const committed = commitWAL(db);
      // The transaction's forwarded copy was encoded with this timestamp (forwardWAL).
      db.pinnedTimestamp = null;
      if (committed && this.role === 'replica' && !this.halt.holds(db.name)) {
        this.log(`${db.name}: a WAL transaction committed before the step-down was released after it: kept as TXID ${formatHex16(db.pos.txid)} (was ${formatHex16(pos.txid)})`);
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log(`FATAL ${db.name}: WAL commit failed: ${message}`);
      this.post({ type: 'fatal', db: db.name, message });
      throw new FuseError(Errno.EIO);
    }
  }

  /** Runs a store call, turning its typed errors into errnos and logging unexpected ones. */
  private storeCall<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof FuseError) throw err;
      if (err instanceof DatabaseExistsError) throw new FuseError(Errno.EEXIST);
      if (err instanceof CommitFencedError) {
        this.logFence(err.db, err.kind, `refused (EIO): ${err.message}`);
        throw new FuseError(Errno.EIO);
      }
      if (err instanceof InvalidWriteError) {
        // One line per refusal: SQLite repeats a refused write while it rolls back.
        if (!err.repeated) this.log(`refused (EIO): ${err.message}`);
        throw new FuseError(Errno.EIO);
      }
      if (isErrno(err, 'ENOENT')) throw new FuseError(Errno.ENOENT);
      this.log(`ERROR ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      throw new FuseError(Errno.EIO);
    }
  }

  private withFd(req: SetattrRequest, node: { kind: FileKind; db: DB }, fn: (fd: number) => void): void {
    const h = (req.valid & SetattrValid.FH) !== 0 ? this.handles.get(req.fh) : undefined;
    if (h !== undefined && h.fd >= 0) {
      fn(h.fd);
      return;
    }
    const fd = node.db.io.open(this.backingPath(node.db, node.kind), 'readWrite');
    try {
      fn(fd);
    } finally {
      node.db.io.close(fd);
    }
  }

  private addHandle(h: Handle): number {
    const fh = this.nextFh++;
    this.handles.set(fh, h);
    return fh;
  }

  private handle(fh: number): Handle {
    const h = this.handles.get(fh);
    if (h === undefined) throw new FuseError(Errno.EBADF);
    return h;
  }

  private inoOfName(name: string): number {
    if (name === LAG_NAME) return LAG_INO;
    if (name === PRIMARY_NAME) {
      if (!this.primaryVisible()) throw new FuseError(Errno.ENOENT);
      return PRIMARY_INO;
    }
    const parsed = parseName(name);
    const db = parsed === null ? undefined : this.store.db(parsed.db);
    if (parsed === null || db === undefined) throw new FuseError(Errno.ENOENT);
    return this.inoOfDb(db, parsed.kind);
  }

  private inoOfDb(db: DB, kind: FileKind): number {
    let base = this.inoOf.get(db.name);
    if (base === undefined) {
      base = DB_INO_BASE + this.dbAt.length * KINDS_PER_DB;
      this.dbAt.push(db);
      this.inoOf.set(db.name, base);
    }
    return base + FILE_KINDS.indexOf(kind);
  }

  private node(ino: number): Node {
    if (ino === FUSE_ROOT_ID) return { kind: 'root' };
    if (ino === LAG_INO) return { kind: 'lag' };
    if (ino === PRIMARY_INO) return { kind: 'primary' };
    const i = Math.floor((ino - DB_INO_BASE) / KINDS_PER_DB);
    const db = this.dbAt[i];
    const kind = FILE_KINDS[(ino - DB_INO_BASE) % KINDS_PER_DB];
    if (ino < DB_INO_BASE || db === undefined || kind === undefined) throw new FuseError(Errno.ENOENT);
    return { kind, db };
  }

  // ---- replica ----

  /**
   * `status`: role, write deadline, primary and lag; `.lag` and `.primary`
   * change with them. Primary → replica recovers every database to its last
   * LTX file (step-down.ts) before it serves as a replica.
   */
  private setStatus(s: StatusCommand): void {
    const wasVisible = this.primaryVisible();
    const oldHostname = this.primaryHostname;
    const roleChanged = s.role !== this.role;
    const lagChanged = roleChanged || s.primaryTimestamp !== this.primaryTimestamp;
    const steppedDown = this.role === 'primary' && s.role === 'replica';
    this.role = s.role;
    this.primaryHostname = s.primaryHostname;
    this.primaryTimestamp = s.primaryTimestamp;
    // A replica refuses writes by its role; a stale deadline must not outlive a term.
    const deadline = s.role === 'primary' ? (s.writeDeadline ?? null) : null;
    if (deadline !== this.writeDeadline) {
      this.writeDeadline = deadline;
      this.store.fence.setDeadline(deadline);
      this.fenceLogged.clear();
    }
    if (roleChanged) this.refusalsLogged.clear();
    if (steppedDown) {
      this.guards.releaseAll();
      this.stepDown.begin(this.store.list());
    }
    const n = this.notices;
    if (n === undefined) return;
    if (lagChanged) n.invalInode(LAG_INO, 0, 0);
    if (wasVisible !== this.primaryVisible() || oldHostname !== this.primaryHostname) {
      n.invalEntry(FUSE_ROOT_ID, PRIMARY_NAME);
      n.invalInode(PRIMARY_INO, 0, 0);
    }
  }

  /** One log line per database and fence refusal kind per term, not one per request. */
  private logFence(db: string, kind: string, line: string): void {
    const key = `${db}\0${kind}`;
    if (this.fenceLogged.has(key)) return;
    this.fenceLogged.add(key);
    this.log(line);
  }

  /**
   * Queues what a step-down recovery changed: the rewritten ranges of the
   * database file, the WAL past its cut, the journal's name. The last
   * notice wakes this thread once written, so the recovery's locks can go.
   */
  private invalidateRecovered(db: DB, r: StepDownResult): number | null {
    const n = this.notices;
    if (n === undefined) return null;
    if (r.journalRemoved) n.invalEntry(FUSE_ROOT_ID, fileName(db.name, 'journal'));
    const base = this.inoOf.get(db.name);
    if (base !== undefined) {
      const dbIno = base + FILE_KINDS.indexOf('database');
      for (const range of r.ranges) n.invalInode(dbIno, range.off, range.len);
      if (r.walTruncatedAt !== null) n.invalInode(base + FILE_KINDS.indexOf('wal'), r.walTruncatedAt, 0);
    }
    const seq = n.invalInode(LAG_INO, 0, 0, true);
    n.flush();
    return seq;
  }

  /** `.primary` exists only on a replica that knows its primary (ref §4.2). */
  private primaryVisible(): boolean {
    return this.role === 'replica' && this.primaryHostname !== '';
  }

  /** `%+010d\n` of the milliseconds this node is behind its primary. */
  private lagText(): Buffer {
    let ms = 0;
    if (this.role === 'replica') ms = this.primaryTimestamp > 0 ? Date.now() - this.primaryTimestamp : LAG_NOT_SYNCED;
    ms = Math.max(-LAG_NOT_SYNCED, Math.min(LAG_NOT_SYNCED, ms));
    return Buffer.from(`${ms < 0 ? '-' : '+'}${String(Math.abs(ms)).padStart(9, '0')}\n`);
  }

  /**
   * On a replica every write is refused with EACCES (ARCHITECTURE §2), and
   * logged once per file and operation: SQLite retries and rolls back.
   */
  private refuseOnReplica(db: string, kind: FileKind, op: string): void {
    if (this.role !== 'replica' || this.halt.holds(db)) return;
    const file = fileName(db, kind);
    const key = `${file}\0${op}`;
    if (!this.refusalsLogged.has(key)) {
      this.refusalsLogged.add(key);
      const primary = this.primaryHostname === '' ? 'unknown' : this.primaryHostname;
      this.log(`refused (EACCES): ${file} ${op}: read-only replica, writes go to the primary ${primary}`);
    }
    throw new FuseError(Errno.EACCES);
  }

  /**
   * Queues what an applied LTX file changed (ref §4.6): exactly the written
   * ranges of the database (all of it after a snapshot), the -shm, the
   * -pos and `.lag`; the names after a deletion. The last notice wakes this
   * thread once written, so the apply's locks can go.
   */
  private invalidateApplied(db: DB, r: ApplyResult): number | null {
    const n = this.notices;
    if (n === undefined) return null;
    const base = this.inoOf.get(db.name);
    // Queued as calls so that the last one carries the wake-up; a notice for
    // an inode the kernel never looked up would only fail with ENOENT.
    const notices: ((wake: boolean) => number)[] = [];
    if (r.deleted) {
      for (const kind of ['database', 'journal', 'wal', 'shm'] as const) notices.push((w) => n.invalEntry(FUSE_ROOT_ID, fileName(db.name, kind), w));
    }
    // Never looked up: the kernel holds nothing of this database's files.
    if (base !== undefined) {
      const dbIno = base + FILE_KINDS.indexOf('database');
      if (r.deleted || r.wholeFile) notices.push((w) => n.invalInode(dbIno, 0, 0, w));
      else for (const range of r.ranges) notices.push((w) => n.invalInode(dbIno, range.off, range.len, w));
      // The -shm is mapped by SQLite: replace the header page in the kernel's
      // cache rather than invalidate it (see ApplyResult.shmPage).
      const shmPage = r.shmPage;
      if (shmPage !== null) notices.push((w) => n.store(base + FILE_KINDS.indexOf('shm'), 0, shmPage, w));
      if (r.deleted) notices.push((w) => n.invalInode(base + FILE_KINDS.indexOf('shm'), 0, 0, w));
      // Cut to 0 bytes behind the kernel's back: its pages and cached size go.
      if (r.walFolded) notices.push((w) => n.invalInode(base + FILE_KINDS.indexOf('wal'), 0, 0, w));
      const pos = base + FILE_KINDS.indexOf('pos');
      if (this.posLookedUp.has(pos)) notices.push((w) => n.invalInode(pos, 0, 0, w));
    }
    if (this.lagLookedUp) notices.push((w) => n.invalInode(LAG_INO, 0, 0, w));
    // Nothing the kernel could have cached: nothing to wait for.
    if (notices.length === 0) return null;
    let seq = 0;
    notices.forEach((notice, i) => (seq = notice(i === notices.length - 1)));
    n.flush();
    return seq;
  }

  private backingPath(db: DB, kind: FileKind): string {
    switch (kind) {
      case 'database':
        return db.databasePath;
      case 'journal':
        return db.journalPath;
      case 'wal':
        return db.walPath;
      case 'shm':
        return db.shmPath;
      case 'pos':
      case 'lock':
        throw new FuseError(Errno.EINVAL);
    }
  }

  private fillAttr(ino: number, a: Attr): void {
    const node = this.node(ino);
    const now = Date.now();
    a.ino = ino;
    a.uid = this.uid;
    a.gid = this.gid;
    a.nlink = 1;
    a.blksize = 4096;
    a.rdev = 0;
    a.flags = 0;
    switch (node.kind) {
      case 'root':
        a.mode = S_IFDIR | (this.role === 'replica' ? 0o555 : 0o777);
        a.nlink = 2;
        a.size = 4096;
        a.blocks = 8;
        setTimes(a, now);
        return;
      case 'lag':
        a.mode = S_IFREG | 0o444;
        a.size = LAG_SIZE;
        a.blocks = 0;
        // The primary's timestamp (now on the primary, the epoch before the first sync).
        setTimes(a, this.role === 'primary' ? now : Math.max(0, this.primaryTimestamp));
        return;
      case 'primary':
        if (!this.primaryVisible()) throw new FuseError(Errno.ENOENT);
        a.mode = S_IFREG | 0o444;
        a.size = Buffer.byteLength(this.primaryHostname) + 1;
        a.blocks = 0;
        setTimes(a, now);
        return;
      case 'pos':
        a.mode = S_IFREG | 0o666;
        a.size = POS_SIZE;
        a.blocks = 0;
        setTimes(a, node.db.timestamp);
        return;
      case 'lock':
        a.mode = S_IFREG | 0o444;
        a.size = 0;
        a.blocks = 0;
        setTimes(a, now);
        return;
      default: {
        const st = statSync(this.backingPath(node.db, node.kind), { throwIfNoEntry: false });
        if (st === undefined) throw new FuseError(Errno.ENOENT);
        fillFromStats(a, st);
        a.mode = S_IFREG | (node.kind === 'database' && this.role === 'replica' && !this.halt.holds(node.db.name) ? 0o444 : 0o666);
      }
    }
  }
}

/** The HALT lock holder of a `<db>-lock` handle. */
function lockHolder(fh: number): HaltHolder {
  return `fh:${fh}`;
}

/** A database's journal or WAL that does not exist (fillAttr's ENOENT). */
function isMissingJournalOrWal(kind: Node['kind'], err: unknown): boolean {
  return (kind === 'journal' || kind === 'wal') && err instanceof FuseError && err.errno === Errno.ENOENT;
}

function fillFromStats(a: Attr, st: Stats): void {
  a.size = st.size;
  a.blocks = st.blocks;
  a.atime = Math.floor(st.atimeMs / 1000);
  a.atimeNsec = Math.floor((st.atimeMs % 1000) * 1e6);
  a.mtime = Math.floor(st.mtimeMs / 1000);
  a.mtimeNsec = Math.floor((st.mtimeMs % 1000) * 1e6);
  a.ctime = Math.floor(st.ctimeMs / 1000);
  a.ctimeNsec = Math.floor((st.ctimeMs % 1000) * 1e6);
}

function setTimes(a: Attr, ms: number): void {
  const sec = Math.floor(ms / 1000);
  const nsec = Math.floor((ms % 1000) * 1e6);
  a.atime = a.mtime = a.ctime = sec;
  a.atimeNsec = a.mtimeNsec = a.ctimeNsec = nsec;
}

function copyOut(src: Buffer, offset: number, size: number, buf: Buffer, bufOffset: number): number {
  if (offset >= src.length) return 0;
  return src.copy(buf, bufOffset, offset, Math.min(src.length, offset + size));
}
