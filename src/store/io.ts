/**
 * The store's file I/O (ARCHITECTURE §4, §7): synchronous, because the store
 * runs on the FUSE thread and answers each request before reading the next.
 *
 * `StoreIO` is the whole surface the store may use to touch its data
 * directory. Keeping it this small is what lets `CrashIO` (io-crash.ts)
 * stand in for it in tests and prove the fsync order: it can only be as
 * faithful as its view of every write, rename and fsync is complete.
 *
 * Errors are node's errno exceptions (`err.code` = 'ENOENT', 'EEXIST', ...);
 * use `isErrno` to branch on them.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { dirname } from 'node:path';

/**
 * How to open a file; every mode but 'read' opens for reading and writing.
 * - read: existing file, read only
 * - readWrite: existing file
 * - create: create if missing, keep contents if present
 * - createNew: create; EEXIST if present (O_EXCL)
 * - replace: create if missing, truncate to 0 if present (O_TRUNC)
 */
export type OpenMode = 'read' | 'readWrite' | 'create' | 'createNew' | 'replace';

/** File I/O of the store. Positions and sizes are byte counts below 2^53. */
export interface StoreIO {
  open(path: string, mode: OpenMode): number;
  close(fd: number): void;
  /**
   * pread into `buf[offset, offset+length)` from `position`, repeated until
   * that many bytes arrived or the file ended. Returns the bytes read.
   */
  read(fd: number, buf: Uint8Array, position: number, offset?: number, length?: number): number;
  /** pwrite all of `buf[offset, offset+length)` at `position` (or throw). */
  write(fd: number, buf: Uint8Array, position: number, offset?: number, length?: number): void;
  truncate(fd: number, size: number): void;
  /** Makes the file's data and metadata durable. */
  fsync(fd: number): void;
  /** Makes the file's data (and the size needed to read it) durable. */
  fdatasync(fd: number): void;
  /** Current size of an open file. */
  fileSize(fd: number): number;
  /** Size of the file at `path`, or null if nothing is there. */
  sizeOf(path: string): number | null;
  exists(path: string): boolean;
  /** Last modification time of the file at `path` in ms since the epoch, or null if nothing is there (retention). */
  mtimeOf(path: string): number | null;
  /** Atomically replaces `to` if present. Durable only after `fsyncDir` of both folders. */
  rename(from: string, to: string): void;
  /** Removes a file. Durable only after `fsyncDir` of its folder. */
  unlink(path: string): void;
  /** Creates `path` and missing parents. A new folder is durable only after `fsyncDir` of its parent. */
  mkdirp(path: string): void;
  /** Names in a folder, sorted (so callers behave the same on every file system). */
  readdir(path: string): string[];
  /** Makes the folder's entries (creates, renames, unlinks inside it) durable. */
  fsyncDir(path: string): void;
  /**
   * Makes every file and folder on the file system holding `path` durable
   * (syncfs(2)): one call instead of an fsync per file, for groups of files.
   */
  syncFileSystem(path: string): void;
  /** Durable copy of `from` at `to` (replaced if present): data fsynced, then `to`'s folder. For forensic copies. */
  copyFile(from: string, to: string): void;
  /**
   * Durably replaces `path` with `data`: write `path.tmp`, fsync it, rename
   * over `path`, fsync the folder. After a crash `path` holds either the old
   * or the new contents, never a mix.
   */
  writeFileAtomic(path: string, data: Uint8Array): void;
}

/** True when `err` is a node errno exception with this code. */
export function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

const { O_RDONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_DIRECTORY } = fs.constants;

const OPEN_FLAGS: Record<OpenMode, number> = {
  read: O_RDONLY,
  readWrite: O_RDWR,
  create: O_RDWR | O_CREAT,
  createNew: O_RDWR | O_CREAT | O_EXCL,
  replace: O_RDWR | O_CREAT | O_TRUNC,
};

/** Mode bits of files the store creates (before umask), as LiteFS's 0o666. */
const FILE_MODE = 0o666;

/** Temporary name used by `writeFileAtomic`. */
export function atomicTempPath(path: string): string {
  return `${path}.tmp`;
}

/**
 * `writeFileAtomic` in terms of the other operations, so that every
 * implementation (and every kill point of CrashIO) sees the same sequence.
 */
export function writeFileAtomicWith(io: StoreIO, path: string, data: Uint8Array): void {
  const tmp = atomicTempPath(path);
  const fd = io.open(tmp, 'replace');
  try {
    io.write(fd, data, 0);
    io.fsync(fd);
  } finally {
    io.close(fd);
  }
  io.rename(tmp, path);
  io.fsyncDir(dirname(path));
}

/** `copyFile` in terms of the other operations, in 1 MiB chunks. */
export function copyFileWith(io: StoreIO, from: string, to: string): void {
  const src = io.open(from, 'read');
  try {
    const dst = io.open(to, 'replace');
    try {
      const buf = new Uint8Array(1 << 20);
      for (let pos = 0; ; ) {
        const n = io.read(src, buf, pos);
        if (n === 0) break;
        io.write(dst, buf, pos, 0, n);
        pos += n;
      }
      io.fsync(dst);
    } finally {
      io.close(dst);
    }
  } finally {
    io.close(src);
  }
  io.fsyncDir(dirname(to));
}

/** StoreIO over node:fs: each method one or two system calls. */
export class RealIO implements StoreIO {
  open(path: string, mode: OpenMode): number {
    return fs.openSync(path, OPEN_FLAGS[mode], FILE_MODE);
  }

  close(fd: number): void {
    fs.closeSync(fd);
  }

  read(fd: number, buf: Uint8Array, position: number, offset = 0, length = buf.length - offset): number {
    let done = 0;
    while (done < length) {
      const n = fs.readSync(fd, buf, offset + done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  write(fd: number, buf: Uint8Array, position: number, offset = 0, length = buf.length - offset): void {
    let done = 0;
    while (done < length) {
      done += fs.writeSync(fd, buf, offset + done, length - done, position + done);
    }
  }

  truncate(fd: number, size: number): void {
    fs.ftruncateSync(fd, size);
  }

  fsync(fd: number): void {
    fs.fsyncSync(fd);
  }

  fdatasync(fd: number): void {
    fs.fdatasyncSync(fd);
  }

  fileSize(fd: number): number {
    return fs.fstatSync(fd).size;
  }

  sizeOf(path: string): number | null {
    const st = fs.statSync(path, { throwIfNoEntry: false });
    return st === undefined ? null : st.size;
  }

  exists(path: string): boolean {
    return fs.existsSync(path);
  }

  mtimeOf(path: string): number | null {
    const st = fs.statSync(path, { throwIfNoEntry: false });
    return st === undefined ? null : st.mtimeMs;
  }

  rename(from: string, to: string): void {
    fs.renameSync(from, to);
  }

  unlink(path: string): void {
    fs.unlinkSync(path);
  }

  mkdirp(path: string): void {
    fs.mkdirSync(path, { recursive: true });
  }

  readdir(path: string): string[] {
    return fs.readdirSync(path).sort();
  }

  fsyncDir(path: string): void {
    const fd = fs.openSync(path, O_RDONLY | O_DIRECTORY);
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  syncFileSystem(path: string): void {
    // Node has no syncfs(2); coreutils' `sync -f` is exactly that call.
    const result = spawnSync('sync', ['-f', path], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (result.error !== undefined) throw result.error;
    if (result.status !== 0) {
      throw new Error(`sync -f ${path} failed (${result.status ?? result.signal}): ${result.stderr.toString().trim()}`);
    }
  }

  copyFile(from: string, to: string): void {
    // The kernel copies (possibly by reflink); we only add the durability.
    fs.copyFileSync(from, to);
    const fd = fs.openSync(to, O_RDONLY);
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    this.fsyncDir(dirname(to));
  }

  writeFileAtomic(path: string, data: Uint8Array): void {
    writeFileAtomicWith(this, path, data);
  }
}
