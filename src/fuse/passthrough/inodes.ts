/**
 * The passthrough's inode table: node id → (parent, name) in the source
 * folder, with the kernel's lookup count. Node ids are the backing files'
 * st_ino (stable across restarts); the source folder itself is FUSE_ROOT_ID.
 * Paths are derived by walking parents, so renaming a folder moves
 * everything below it without touching the table.
 */
import { FUSE_ROOT_ID } from '../abi.js';
import { Errno, FuseError } from '../errors.js';

interface Inode {
  parent: number;
  name: string;
  nlookup: number;
}

/** Backing inode numbers that collide with the root id are mapped here instead. */
const ROOT_ALIAS = Number.MAX_SAFE_INTEGER;

export class InodeTable {
  private readonly nodes = new Map<number, Inode>();

  readonly root: string;

  constructor(root: string) {
    // Without a trailing slash, so `${root}/${name}` is always well formed.
    this.root = root.length > 1 ? root.replace(/\/+$/, '') : root;
  }

  /** Node id the kernel sees for a backing st_ino. */
  static nodeIdFor(stIno: number): number {
    return stIno === FUSE_ROOT_ID ? ROOT_ALIAS : stIno;
  }

  /** Number of inodes the kernel currently knows (root excluded). */
  get size(): number {
    return this.nodes.size;
  }

  has(ino: number): boolean {
    return ino === FUSE_ROOT_ID || this.nodes.has(ino);
  }

  /** Lookup count of `ino` (0 when unknown). */
  lookups(ino: number): number {
    return this.nodes.get(ino)?.nlookup ?? 0;
  }

  /** Backing path of a node; ESTALE... ENOENT when the kernel names a node we forgot. */
  path(ino: number): string {
    if (ino === FUSE_ROOT_ID) return this.root;
    // Names never contain '/' (childPath checks), so plain concatenation is
    // a valid path and much cheaper than path.join on the request path.
    let path = '';
    let cur = ino;
    // Bounded: each step moves to a parent; a cycle (impossible by
    // construction) is cut at 4096 levels.
    for (let depth = 0; cur !== FUSE_ROOT_ID; depth++) {
      const n = this.nodes.get(cur);
      if (n === undefined || depth > 4096) throw new FuseError(Errno.ENOENT, `unknown inode ${ino}`);
      path = `/${n.name}${path}`;
      cur = n.parent;
    }
    return this.root + path;
  }

  childPath(parent: number, name: string): string {
    if (name.includes('/') || name === '' || name === '.' || name === '..') {
      throw new FuseError(Errno.EINVAL, `bad name ${JSON.stringify(name)}`);
    }
    return `${this.path(parent)}/${name}`;
  }

  /** Records one more kernel reference to `nodeid`, found as `name` in `parent`. */
  remember(nodeid: number, parent: number, name: string): void {
    if (nodeid === FUSE_ROOT_ID) return;
    const n = this.nodes.get(nodeid);
    if (n === undefined) {
      this.nodes.set(nodeid, { parent, name, nlookup: 1 });
      return;
    }
    n.nlookup++;
    // The latest name wins: the old one may have been unlinked or renamed behind our back.
    n.parent = parent;
    n.name = name;
  }

  /** Points an already known node at its new name (after a rename). */
  moved(nodeid: number, parent: number, name: string): void {
    const n = this.nodes.get(nodeid);
    if (n === undefined) return;
    n.parent = parent;
    n.name = name;
  }

  /** The kernel dropped `count` references. */
  forget(nodeid: number, count: number): void {
    const n = this.nodes.get(nodeid);
    if (n === undefined) return;
    n.nlookup -= count;
    if (n.nlookup <= 0) this.nodes.delete(nodeid);
  }
}
