/**
 * The passthrough's inode table: node id → the backing inode, with the
 * kernel's lookup count. Each known inode is held by an O_PATH descriptor
 * and reached through /proc/self/fd/N (as libfuse's passthrough_ll does), so
 * an inode stays the same file whatever happens to its names: a second name
 * (hard link), a rename of it or of a folder above it, an unlink while the
 * kernel still uses it, a folder removed and made again under the same name.
 * Holding the inode also keeps its number from being reused while the
 * kernel knows it.
 *
 * Node ids are the backing st_ino (stable across restarts) for files on the
 * source's own device; the source folder is FUSE_ROOT_ID. Past
 * `maxDescriptors` held inodes, new ones are kept by name instead (parent +
 * name, the weaker scheme) rather than failing with EMFILE.
 */
import { closeSync, constants as fsc, fstatSync, lstatSync, openSync, readlinkSync, type Stats } from 'node:fs';
import { FUSE_ROOT_ID } from '../abi.js';
import { Errno, FuseError } from '../errors.js';

/** O_PATH (Linux, the same value on every architecture): a handle on the inode, no I/O. */
const O_PATH = 0o10000000;

interface Inode {
  readonly nodeid: number;
  readonly key: InodeKey;
  /** O_PATH descriptor, or -1 when kept by name. */
  readonly fd: number;
  /**
   * Names it was last seen by, newest first, at most MAX_NAMES: hints for the
   * calls that need a real name (readlink, link, symlink attributes; every
   * call when fd is -1). A hint is checked before use; an inode with hard
   * links may have lost some of its names.
   */
  names: Name[];
  nlookup: number;
  readonly isSymlink: boolean;
}

type InodeKey = number | string;

interface Name {
  readonly parent: number;
  readonly name: string;
}

const MAX_NAMES = 8;

/** Node ids for inodes on other devices (mounts inside the source) or numbered 1. */
const SYNTHETIC_BASE = 2 ** 52;

export class InodeTable {
  private readonly nodes = new Map<number, Inode>();
  private readonly byKey = new Map<InodeKey, Inode>();
  private readonly rootFd: number;
  private readonly rootDev: number;
  private nextSynthetic = SYNTHETIC_BASE;
  private heldFds = 0;

  readonly root: string;

  constructor(
    root: string,
    private readonly maxDescriptors = 10_000,
  ) {
    // Without a trailing slash, so `${root}/${name}` is always well formed.
    this.root = root.length > 1 ? root.replace(/\/+$/, '') : root;
    this.rootFd = openSync(root, O_PATH | fsc.O_DIRECTORY);
    this.rootDev = fstatSync(this.rootFd).dev;
  }

  private closed = false;

  /**
   * An inode's identity: its number when it lives on the source folder's
   * device (nearly always, and a number is hashed without building a string
   * on every LOOKUP), else "dev:ino".
   */
  private keyOf(st: Stats): InodeKey {
    return st.dev === this.rootDev ? st.ino : `${st.dev}:${st.ino}`;
  }

  /** Closes every held descriptor (once). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const n of this.nodes.values()) if (n.fd >= 0) closeSync(n.fd);
    this.nodes.clear();
    this.byKey.clear();
    this.heldFds = 0;
    closeSync(this.rootFd);
  }

  /** Number of inodes the kernel currently knows (root excluded). */
  get size(): number {
    return this.nodes.size;
  }

  /** Lookup count of `ino` (0 when unknown). */
  lookups(ino: number): number {
    return this.nodes.get(ino)?.nlookup ?? 0;
  }

  /**
   * A path that reaches inode `ino` itself: /proc/self/fd/N, which the
   * kernel resolves to the inode whatever its names are now. ENOENT for a
   * node id the kernel should not be using.
   */
  path(ino: number): string {
    // The source folder by its own path: resolving a /proc magic link costs
    // ~2 µs more per lookup, and the root's children are the hot ones.
    if (ino === FUSE_ROOT_ID) return this.root;
    const n = this.nodes.get(ino);
    if (n === undefined) throw new FuseError(Errno.ENOENT, `unknown inode ${ino}`);
    if (n.fd >= 0) return `/proc/self/fd/${n.fd}`;
    return this.namePath(n.names[0]!, 0);
  }

  /** The path of `name` inside folder `parent`. */
  childPath(parent: number, name: string): string {
    if (name.includes('/') || name === '' || name === '.' || name === '..') {
      throw new FuseError(Errno.EINVAL, `bad name ${JSON.stringify(name)}`);
    }
    return `${this.path(parent)}/${name}`;
  }

  /**
   * The current real path of an inode (for calls that must not follow the
   * /proc magic link: readlink, link, operations on symlinks).
   */
  realPath(ino: number): string {
    const n = this.nodes.get(ino);
    if (n === undefined || n.fd < 0) return this.path(ino);
    // Candidates: the name the kernel last looked it up by, then the name the
    // descriptor was opened by (which says "(deleted)" once that name is gone,
    // even if a hard link remains). The first that is still this inode wins.
    for (const hint of n.names) {
      let c: string;
      try {
        c = this.namePath(hint, 0);
      } catch {
        continue; // its folder is forgotten
      }
      const st = lstatSync(c, { throwIfNoEntry: false });
      if (st !== undefined && this.keyOf(st) === n.key) return c;
    }
    const opened = readlinkSync(`/proc/self/fd/${n.fd}`);
    const st = lstatSync(opened, { throwIfNoEntry: false });
    if (st !== undefined && this.keyOf(st) === n.key) return opened;
    throw new FuseError(Errno.ENOENT, `no name left for inode ${ino}`);
  }

  /** True when `ino` is a symbolic link (operations must not follow it). */
  isSymlink(ino: number): boolean {
    return this.nodes.get(ino)?.isSymlink === true;
  }

  /** Node id the kernel sees for backing stats (without registering anything). */
  nodeIdOf(st: Stats): number {
    const known = this.byKey.get(this.keyOf(st));
    if (known !== undefined) return known.nodeid;
    return st.dev === this.rootDev && st.ino !== FUSE_ROOT_ID ? st.ino : -1;
  }

  /**
   * Records one more kernel reference to the inode `st` describes, found as
   * `name` in `parent`; returns its node id. A new inode is opened O_PATH by
   * that name and checked to be the same inode (it may have changed since
   * `st` was taken: then ENOENT, the caller answers as if it was missing).
   * `viaFd`: a descriptor already open on the inode (CREATE), used instead
   * of the name.
   */
  remember(st: Stats, parent: number, name: string, viaFd = -1): number {
    const key = this.keyOf(st);
    const known = this.byKey.get(key);
    if (known !== undefined) {
      known.nlookup++;
      addName(known, parent, name);
      return known.nodeid;
    }
    let fd = -1;
    if (this.heldFds < this.maxDescriptors) {
      const flags = O_PATH | (viaFd >= 0 ? 0 : fsc.O_NOFOLLOW);
      fd = openSync(viaFd >= 0 ? `/proc/self/fd/${viaFd}` : this.childPath(parent, name), flags);
      const check = fstatSync(fd);
      if (this.keyOf(check) !== key) {
        closeSync(fd);
        throw new FuseError(Errno.ENOENT, `${name} changed while being looked up`);
      }
      this.heldFds++;
    }
    const nodeid = st.dev === this.rootDev && st.ino !== FUSE_ROOT_ID && !this.nodes.has(st.ino) ? st.ino : this.nextSynthetic++;
    const node: Inode = { nodeid, key, fd, names: [{ parent, name }], nlookup: 1, isSymlink: st.isSymbolicLink() };
    this.nodes.set(nodeid, node);
    this.byKey.set(key, node);
    return nodeid;
  }

  /** After a rename: a name-kept inode must follow its new name. */
  moved(st: Stats, parent: number, name: string): void {
    const n = this.byKey.get(this.keyOf(st));
    if (n !== undefined) addName(n, parent, name);
  }

  /** Attributes of a known inode, from its descriptor (works after unlink). */
  stat(ino: number): Stats {
    if (ino === FUSE_ROOT_ID) return fstatSync(this.rootFd);
    const n = this.nodes.get(ino);
    if (n === undefined) throw new FuseError(Errno.ENOENT, `unknown inode ${ino}`);
    return n.fd >= 0 ? fstatSync(n.fd) : lstatSync(this.namePath(n.names[0]!, 0));
  }

  /** The kernel dropped `count` references. */
  forget(nodeid: number, count: number): void {
    const n = this.nodes.get(nodeid);
    if (n === undefined) return;
    n.nlookup -= count;
    if (n.nlookup > 0) return;
    this.nodes.delete(nodeid);
    this.byKey.delete(n.key);
    if (n.fd >= 0) {
      closeSync(n.fd);
      this.heldFds--;
    }
  }

  /** The path of a name: its folder's descriptor path plus the name. */
  private namePath(n: Name, depth: number): string {
    // Bounded: a chain of name-kept folders is cut at 4096 levels.
    if (depth > 4096) throw new FuseError(Errno.ELOOP, 'folder chain too deep');
    if (n.parent === FUSE_ROOT_ID) return `${this.root}/${n.name}`;
    const p = this.nodes.get(n.parent);
    if (p === undefined) throw new FuseError(Errno.ENOENT, `unknown parent of ${n.name}`);
    return `${p.fd >= 0 ? `/proc/self/fd/${p.fd}` : this.namePath(p.names[0]!, depth + 1)}/${n.name}`;
  }
}

/** Puts a name first in an inode's hints (no duplicates, at most MAX_NAMES). */
function addName(n: Inode, parent: number, name: string): void {
  const i = n.names.findIndex((x) => x.parent === parent && x.name === name);
  if (i === 0) return;
  if (i > 0) n.names.splice(i, 1);
  n.names.unshift({ parent, name });
  if (n.names.length > MAX_NAMES) n.names.length = MAX_NAMES;
}
