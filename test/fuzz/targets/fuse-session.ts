/**
 * Fuzz target: arbitrary bytes fed to a FuseSession as one request (with a
 * handler that answers everything) must never make the session throw: a
 * malformed request gets an EIO reply, a well-formed one its encoded reply.
 */
import { Opcode } from '../../../src/fuse/abi.js';
import { DEFERRED, type FuseHandler } from '../../../src/fuse/handler.js';
import { FuseSession, type FuseDevice } from '../../../src/fuse/session.js';
import type { FuzzTarget } from '../target.js';
import { target as requestTarget } from './fuse-request.js';

/** Answers every request with plausible values; touches no file system. */
const handler: FuseHandler = {
  lookup: (r, out) => {
    out.nodeid = r.name.length;
    out.entryValid = 1;
  },
  forget: () => {},
  getattr: (_r, out) => {
    out.attr.ino = 2;
    out.attr.mode = 0o100644;
  },
  setattr: (_r, out) => {
    out.attr.ino = 2;
  },
  readlink: () => 'target',
  symlink: (_r, out) => void (out.nodeid = 3),
  mknod: (_r, out) => void (out.nodeid = 3),
  mkdir: (_r, out) => void (out.nodeid = 3),
  link: (_r, out) => void (out.nodeid = 3),
  unlink: () => {},
  rmdir: () => {},
  rename: () => {},
  open: (_r, out) => void (out.fh = 9),
  read: (r, buf, off) => {
    buf.fill(1, off, off + Math.min(r.size, 16));
    return r.size;
  },
  write: (r) => (r.size % 2 === 0 ? r.data.length : DEFERRED),
  statfs: () => {},
  release: () => {},
  fsync: () => DEFERRED,
  flush: () => {},
  getxattr: () => Buffer.from('value'),
  listxattr: () => Buffer.from('user.a\0'),
  opendir: (_r, out) => void (out.fh = 10),
  readdir: (_r, out) => {
    for (let i = 0; i < 3 && out.add(i + 1, `e${i}`, 8, i + 1); i++);
  },
  readdirplus: (_r, out) => {
    for (let i = 0; i < 3; i++) {
      const e = out.nextEntry();
      e.nodeid = i + 1;
      if (!out.addPlus(e, `e${i}`, 8, i + 1)) break;
    }
  },
  releasedir: () => {},
  getlk: () => {},
  setlk: (r) => (r.opcode === Opcode.SETLKW ? DEFERRED : undefined),
  interrupt: () => true,
  access: () => {},
  create: (_r, e, o) => {
    e.nodeid = 4;
    o.fh = 11;
  },
  fallocate: () => {},
  lseek: (r) => r.offset,
};

let pending: Buffer | undefined;
const device: FuseDevice = {
  read(buf) {
    const next = pending;
    pending = undefined;
    if (next === undefined) throw Object.assign(new Error('end of input'), { code: 'ENODEV' });
    next.copy(buf);
    return Math.min(next.length, buf.length);
  },
  write() {},
};

let session = newSession();
let served = 0;

function newSession(): FuseSession {
  return new FuseSession({ fd: -1, device, handler, maxWrite: 64 * 1024 });
}

export const target: FuzzTarget = {
  name: 'fuse-session',
  seeds: () => requestTarget.seeds(),
  run(input: Buffer): void {
    if (input.length === 0) return;
    pending = input.length > 64 * 1024 + 1024 ? input.subarray(0, 64 * 1024) : input;
    session.run();
    // A DESTROY ends a session for good, and deferred requests that are never
    // completed accumulate: start afresh after one, and every 1000 inputs.
    const destroyed = input.length >= 8 && input.readUInt32LE(4) === Opcode.DESTROY;
    if (destroyed || ++served % 1000 === 0) session = newSession();
  },
  isExpected: () => false,
};
