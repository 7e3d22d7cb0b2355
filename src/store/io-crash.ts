/**
 * CrashIO: a StoreIO for tests that crashes on cue and can simulate power
 * loss, so tests can prove the store's fsync order (ARCHITECTURE §7).
 *
 * Kill points. Every fsync, fdatasync, fsyncDir and syncFileSystem is counted (with
 * `count: 'mutation'` also every write, truncate, file creation, rename,
 * unlink and mkdir). Just before the `killAt`-th counted operation runs,
 * CrashIO crashes: 'throw' throws SimulatedCrash and refuses every later call
 * until `restart()` or `simulatePowerLoss()`; 'kill' sends SIGKILL to its own
 * process (a worker thread's process.exit would only end the thread), so a
 * parent sees a real abrupt death. The crashed operation has not happened.
 *
 * Power loss: the durability model implemented, strict POSIX (what fsync
 * promises, nothing more):
 * - A file's contents and size are durable as of its last fsync/fdatasync.
 *   Writes and truncations since then are lost entirely (no torn writes, no
 *   partial survival: the worst case for a store that relies on fsync).
 * - A folder's entries are durable as of its last fsyncDir. A create,
 *   rename or unlink since then is undone: a new file vanishes (even if the
 *   file itself was fsynced), a renamed file returns to its old name (with
 *   its durable contents), an unlinked or replaced file comes back. A rename
 *   between folders is judged per folder (source entry and target entry).
 * - A folder made by mkdirp is durable once its parent is fsynced; until
 *   then, power loss removes it with everything inside.
 * `simulatePowerLoss()` rewrites the disk to that durable state. Real file
 * systems often keep more (ext4 commits renames with the next journal
 * transaction), never less, so a store correct here is correct there.
 *
 * Because folders are judged separately, a power loss after a rename
 * between two folders of which only the target was fsynced leaves the file
 * under both names (hard links). That is allowed: files are tracked by inode.
 *
 * How: each write or truncation first saves the bytes it replaces (an undo
 * log per inode, dropped at fsync). CrashIO hard-links into `shadowDir` every
 * file that is open for writing, has unsynced changes, or is still named by
 * a durable entry that has changed, so it can reach the inode at power loss
 * even after unlinks and renames. Power loss replays the undo logs
 * backwards, then restores every changed name.
 *
 * Limits: every change to the data directory must go through this object;
 * renaming or removing folders is not modelled; `shadowDir` must be on the
 * same file system as the data (hard links) and outside it.
 */
import * as fs from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { copyFileWith, RealIO, writeFileAtomicWith, type OpenMode, type StoreIO } from './io.js';

/** Operations CrashIO counts towards a kill point. */
export type CountedOp = 'fsync' | 'fdatasync' | 'fsyncDir' | 'syncfs' | 'write' | 'truncate' | 'create' | 'rename' | 'unlink' | 'mkdir';

/** The operation a kill point stopped. */
export interface KillPoint {
  /** 1-based count of the operation among the counted ones. */
  readonly count: number;
  readonly op: CountedOp;
  readonly path: string;
}

/** Thrown at a kill point with action 'throw', and by every call after it. */
export class SimulatedCrash extends Error {
  constructor(readonly point: KillPoint) {
    super(`simulated crash before ${point.op} #${point.count} of ${point.path}`);
    this.name = 'SimulatedCrash';
  }
}

export type CrashAction = 'throw' | 'kill' | ((point: KillPoint) => void);

export interface CrashIOOptions {
  /** Folder for CrashIO's hard links: same file system as the data, outside it. Created if missing. */
  shadowDir: string;
  /** Crash before the N-th counted operation (1-based); 0 = never. */
  killAt?: number;
  /** 'sync' counts fsync, fdatasync and fsyncDir; 'mutation' also every other change. Default 'sync'. */
  count?: 'sync' | 'mutation';
  /** Default 'throw'. A function runs at the kill point; CrashIO then behaves as for 'throw'. */
  action?: CrashAction;
  /** Record every counted operation in `trace` ("3 fsync /path"). */
  trace?: boolean;
  /** The I/O underneath; must act on the real file system. Default RealIO. */
  base?: StoreIO;
}

const SYNC_OPS: ReadonlySet<CountedOp> = new Set(['fsync', 'fdatasync', 'fsyncDir', 'syncfs']);

/** A change to a file's contents, undone by writing `old` back at `position` and cutting to `oldSize`. */
interface Undo {
  position: number;
  old: Uint8Array;
  oldSize: number;
}

/** What CrashIO knows about one file (inode). */
interface FileRecord {
  /** `dev:ino`. */
  readonly key: string;
  /** Hard link in shadowDir while the file is open for writing, has unsynced changes, or a changed durable entry names it. */
  shadow: string | null;
  /** Durable folder entries (among changed names) naming this file. */
  durableRefs: number;
  /** Descriptors open on it through CrashIO for writing. */
  writers: number;
  /** Unsynced changes, oldest first. */
  undo: Undo[];
}

export class CrashIO implements StoreIO {
  private readonly base: StoreIO;
  private readonly shadowDir: string;
  private killAt: number;
  private countMode: 'sync' | 'mutation';
  private readonly action: CrashAction;
  private crashedAt: KillPoint | null = null;

  private readonly fds = new Map<number, FileRecord>();
  /** Records by `dev:ino`. A record without shadow holds no state, so inode reuse is harmless. */
  private readonly byInode = new Map<string, FileRecord>();
  /** folder → name → the file durably bound to that name (null: none), for names changed since the folder's last fsync. */
  private readonly changedNames = new Map<string, Map<string, FileRecord | null>>();
  /** Folders made since their parent's last fsync: path → parent. */
  private readonly newDirs = new Map<string, string>();
  private readonly dirty = new Set<FileRecord>();
  /** Descriptors opened for writing. */
  private readonly writable = new Set<number>();
  /** Name each descriptor was opened by, for kill-point messages and traces. */
  private readonly fdNames = new Map<number, string>();
  private nextId = 1;

  /** Counted operations so far (per `count`). */
  counted = 0;
  /** fsync + fdatasync + fsyncDir calls so far, whatever `count` says. */
  syncs = 0;
  /** Changes of any kind so far (syncs included). */
  mutations = 0;
  /** Counted operations, when `trace` is on. */
  readonly trace: string[] | null;

  constructor(options: CrashIOOptions) {
    this.base = options.base ?? new RealIO();
    this.shadowDir = resolve(options.shadowDir);
    this.killAt = options.killAt ?? 0;
    this.countMode = options.count ?? 'sync';
    this.action = options.action ?? 'throw';
    this.trace = options.trace === true ? [] : null;
    fs.mkdirSync(this.shadowDir, { recursive: true });
  }

  /** Arms (or with 0 disarms) a kill point, counting from now. */
  setKillAt(n: number, count: 'sync' | 'mutation' = this.countMode): void {
    this.killAt = n;
    this.countMode = count;
    this.counted = 0;
  }

  /** The kill point that fired, while crashed. */
  get crashed(): KillPoint | null {
    return this.crashedAt;
  }

  /**
   * The process died (page cache intact): close every descriptor and accept
   * calls again. Unsynced changes stay unsynced, so a later power loss still
   * loses them.
   */
  restart(): void {
    this.closeAll();
    this.crashedAt = null;
  }

  /** Descriptors currently open through this object. */
  get openFiles(): number {
    return this.fds.size;
  }

  // ---- StoreIO ----

  open(path: string, mode: OpenMode): number {
    this.alive();
    path = resolve(path);
    const exists = this.base.exists(path);
    if (!exists && mode !== 'read' && mode !== 'readWrite') {
      this.point('create', path);
      this.touchName(path);
    } else if (exists && mode === 'replace') {
      // Truncation at open: save what is lost before it is lost.
      this.point('truncate', path);
      const rec = this.recordAt(path)!;
      const old = this.readWhole(path);
      this.pin(rec, path);
      const fd = this.base.open(path, mode);
      this.pushUndo(rec, { position: 0, old, oldSize: old.length });
      return this.track(fd, rec, true, path);
    }
    const fd = this.base.open(path, mode);
    const rec = this.recordOfFd(fd);
    const writable = mode !== 'read';
    if (writable) this.pin(rec, path);
    return this.track(fd, rec, writable, path);
  }

  close(fd: number): void {
    this.alive();
    this.base.close(fd);
    const rec = this.fds.get(fd);
    if (rec === undefined) return;
    this.fds.delete(fd);
    this.fdNames.delete(fd);
    if (this.writable.delete(fd)) rec.writers--;
    this.unpinIfIdle(rec);
  }

  read(fd: number, buf: Uint8Array, position: number, offset?: number, length?: number): number {
    this.alive();
    return this.base.read(fd, buf, position, offset, length);
  }

  write(fd: number, buf: Uint8Array, position: number, offset = 0, length = buf.length - offset): void {
    this.alive();
    const rec = this.fds.get(fd);
    this.point('write', this.fdName(fd));
    if (rec === undefined) return this.base.write(fd, buf, position, offset, length);
    const oldSize = this.base.fileSize(fd);
    const end = Math.min(position + length, oldSize);
    const old = new Uint8Array(Math.max(end - position, 0));
    if (old.length > 0) this.base.read(fd, old, position);
    this.base.write(fd, buf, position, offset, length);
    this.pushUndo(rec, { position, old, oldSize });
  }

  truncate(fd: number, size: number): void {
    this.alive();
    const rec = this.fds.get(fd);
    this.point('truncate', this.fdName(fd));
    if (rec === undefined) return this.base.truncate(fd, size);
    const oldSize = this.base.fileSize(fd);
    const old = new Uint8Array(Math.max(oldSize - size, 0));
    if (old.length > 0) this.base.read(fd, old, size);
    this.base.truncate(fd, size);
    this.pushUndo(rec, { position: size, old, oldSize });
  }

  fsync(fd: number): void {
    this.sync(fd, 'fsync');
  }

  fdatasync(fd: number): void {
    this.sync(fd, 'fdatasync');
  }

  fileSize(fd: number): number {
    this.alive();
    return this.base.fileSize(fd);
  }

  sizeOf(path: string): number | null {
    this.alive();
    return this.base.sizeOf(path);
  }

  exists(path: string): boolean {
    this.alive();
    return this.base.exists(path);
  }

  mtimeOf(path: string): number | null {
    this.alive();
    return this.base.mtimeOf(path);
  }

  rename(from: string, to: string): void {
    this.alive();
    from = resolve(from);
    to = resolve(to);
    this.point('rename', `${from} -> ${to}`);
    if (from === to || !this.base.exists(from)) return this.base.rename(from, to);
    if (fs.statSync(from).isDirectory()) throw new Error(`CrashIO does not model renaming folders: ${from}`);
    this.touchName(from);
    this.touchName(to);
    this.base.rename(from, to);
  }

  unlink(path: string): void {
    this.alive();
    path = resolve(path);
    this.point('unlink', path);
    if (this.base.exists(path)) this.touchName(path);
    this.base.unlink(path);
  }

  mkdirp(path: string): void {
    this.alive();
    path = resolve(path);
    const missing: string[] = [];
    for (let p = path; !this.base.exists(p); p = dirname(p)) missing.unshift(p);
    for (const dir of missing) {
      this.point('mkdir', dir);
      this.base.mkdirp(dir);
      this.newDirs.set(dir, dirname(dir));
    }
  }

  readdir(path: string): string[] {
    this.alive();
    return this.base.readdir(path);
  }

  fsyncDir(path: string): void {
    this.alive();
    path = resolve(path);
    this.point('fsyncDir', path);
    this.base.fsyncDir(path);
    const names = this.changedNames.get(path);
    if (names !== undefined) {
      for (const rec of names.values()) if (rec !== null) this.dropDurableRef(rec);
      this.changedNames.delete(path);
    }
    for (const [dir, parent] of this.newDirs) if (parent === path) this.newDirs.delete(dir);
  }

  /** syncfs: every change CrashIO knows of becomes durable (it only sees the data directory). */
  syncFileSystem(path: string): void {
    this.alive();
    path = resolve(path);
    this.point('syncfs', path);
    this.base.syncFileSystem(path);
    for (const rec of this.dirty) {
      rec.undo = [];
      this.unpinIfIdle(rec);
    }
    this.dirty.clear();
    for (const names of this.changedNames.values()) for (const rec of names.values()) if (rec !== null) this.dropDurableRef(rec);
    this.changedNames.clear();
    this.newDirs.clear();
  }

  copyFile(from: string, to: string): void {
    copyFileWith(this, from, to);
  }

  writeFileAtomic(path: string, data: Uint8Array): void {
    writeFileAtomicWith(this, path, data);
  }

  // ---- power loss ----

  /**
   * Closes every descriptor and rewrites the disk to its durable state (see
   * the model above). Afterwards everything on disk counts as durable and
   * calls are accepted again; the kill point is disarmed.
   */
  simulatePowerLoss(): void {
    this.closeAll();
    // Contents first, while every file still has a name or a shadow.
    for (const rec of this.dirty) {
      // Dirty files are always pinned: the shadow reaches the inode whatever its names.
      const fd = this.base.open(rec.shadow!, 'readWrite');
      try {
        for (let i = rec.undo.length - 1; i >= 0; i--) {
          const u = rec.undo[i]!;
          if (u.old.length > 0) this.base.write(fd, u.old, u.position);
          this.base.truncate(fd, u.oldSize);
        }
      } finally {
        this.base.close(fd);
      }
    }
    // Then names: clear every changed name, then bind the durable files again.
    for (const [dir, names] of this.changedNames) {
      for (const name of names.keys()) fs.rmSync(join(dir, name), { force: true });
    }
    for (const [dir, names] of this.changedNames) {
      for (const [name, rec] of names) {
        if (rec === null) continue;
        if (rec.shadow === null) throw new Error(`CrashIO: no shadow kept for ${join(dir, name)}`);
        fs.linkSync(rec.shadow, join(dir, name));
      }
    }
    // Folders whose creation never became durable go with their contents.
    for (const dir of [...this.newDirs.keys()].sort((a, b) => b.length - a.length)) {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    for (const name of fs.readdirSync(this.shadowDir)) fs.rmSync(join(this.shadowDir, name), { force: true });
    this.byInode.clear();
    this.writable.clear();
    this.changedNames.clear();
    this.newDirs.clear();
    this.dirty.clear();
    this.crashedAt = null;
    this.killAt = 0;
  }

  // ---- internals ----

  private alive(): void {
    if (this.crashedAt !== null) throw new SimulatedCrash(this.crashedAt);
  }

  /** Counts an operation about to run and crashes if it is the kill point. */
  private point(op: CountedOp, path: string): void {
    this.mutations++;
    const sync = SYNC_OPS.has(op);
    if (sync) this.syncs++;
    if (!sync && this.countMode === 'sync') return;
    const count = ++this.counted;
    this.trace?.push(`${count} ${op} ${path}`);
    if (count !== this.killAt) return;
    const point: KillPoint = { count, op, path };
    if (this.action === 'kill') process.kill(process.pid, 'SIGKILL');
    if (typeof this.action === 'function') this.action(point);
    this.crashedAt = point;
    throw new SimulatedCrash(point);
  }

  private sync(fd: number, op: 'fsync' | 'fdatasync'): void {
    this.alive();
    const rec = this.fds.get(fd);
    this.point(op, this.fdName(fd));
    if (op === 'fsync') this.base.fsync(fd);
    else this.base.fdatasync(fd);
    if (rec !== undefined && rec.undo.length > 0) {
      rec.undo = [];
      this.dirty.delete(rec);
      this.unpinIfIdle(rec);
    }
  }

  private pushUndo(rec: FileRecord, undo: Undo): void {
    rec.undo.push(undo);
    this.dirty.add(rec);
  }

  private track(fd: number, rec: FileRecord, writable: boolean, path: string): number {
    this.fds.set(fd, rec);
    this.fdNames.set(fd, path);
    if (writable) {
      this.writable.add(fd);
      rec.writers++;
    }
    return fd;
  }

  private recordByKey(key: string): FileRecord {
    let rec = this.byInode.get(key);
    if (rec === undefined) {
      rec = { key, shadow: null, durableRefs: 0, writers: 0, undo: [] };
      this.byInode.set(key, rec);
    }
    return rec;
  }

  private recordOfFd(fd: number): FileRecord {
    const st = fs.fstatSync(fd, { bigint: true });
    return this.recordByKey(`${st.dev}:${st.ino}`);
  }

  /** The record of the file at `path`, or null if nothing is there. A file first seen now is durable as it is. */
  private recordAt(path: string): FileRecord | null {
    const st = fs.lstatSync(path, { bigint: true, throwIfNoEntry: false });
    return st === undefined ? null : this.recordByKey(`${st.dev}:${st.ino}`);
  }

  /** Keeps the inode reachable through a shadow link (`path` is a current name of it). */
  private pin(rec: FileRecord, path: string): void {
    if (rec.shadow !== null) return;
    rec.shadow = join(this.shadowDir, `${this.nextId++}`);
    fs.linkSync(path, rec.shadow);
  }

  /** Drops the shadow once nothing needs it: no writer, no unsynced change, no changed durable entry. */
  private unpinIfIdle(rec: FileRecord): void {
    if (rec.shadow === null || rec.writers > 0 || rec.undo.length > 0 || rec.durableRefs > 0) return;
    fs.rmSync(rec.shadow, { force: true });
    rec.shadow = null;
  }

  /**
   * `path`'s entry is about to change. The first change since its folder's
   * last fsync records what the durable entry is (the file there now, or
   * none) and pins that file so power loss can bring it back.
   */
  private touchName(path: string): void {
    const dir = dirname(path);
    let names = this.changedNames.get(dir);
    if (names === undefined) this.changedNames.set(dir, (names = new Map()));
    const name = basename(path);
    if (names.has(name)) return;
    const current = this.recordAt(path);
    names.set(name, current);
    if (current === null) return;
    current.durableRefs++;
    this.pin(current, path);
  }

  private dropDurableRef(rec: FileRecord): void {
    rec.durableRefs--;
    this.unpinIfIdle(rec);
  }

  private readWhole(path: string): Uint8Array {
    const fd = this.base.open(path, 'read');
    try {
      const buf = new Uint8Array(this.base.fileSize(fd));
      this.base.read(fd, buf, 0);
      return buf;
    } finally {
      this.base.close(fd);
    }
  }

  private closeAll(): void {
    for (const [fd, rec] of this.fds) {
      if (this.writable.delete(fd)) rec.writers--;
      try {
        this.base.close(fd);
      } catch {
        // Already closed underneath; nothing to release.
      }
      this.unpinIfIdle(rec);
    }
    this.fds.clear();
    this.fdNames.clear();
  }

  private fdName(fd: number): string {
    return this.fdNames.get(fd) ?? `fd ${fd}`;
  }
}
