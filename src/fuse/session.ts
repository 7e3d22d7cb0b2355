/**
 * The request loop of one FUSE connection, run on the FUSE worker thread.
 *
 * One synchronous read of /dev/fuse into one preallocated buffer, decode in
 * place, call the handler synchronously, one synchronous write of the reply
 * from one preallocated buffer. Nothing here awaits: the thread's event loop
 * never runs while the session serves, so messages from the main thread are
 * pulled with receiveMessageOnPort before and after every request.
 */
import { readSync, writeSync } from 'node:fs';
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import {
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  InitFlag,
  LockType,
  OUT_HEADER_SIZE,
  Opcode,
  opcodeName,
} from './abi.js';
import { Errno, FuseDecodeError, errnoOf, errorCode } from './errors.js';
import { DEFERRED, type ConnInfo, type FuseHandler } from './handler.js';
import type { NoticeQueue } from './notices.js';
import type { ParkFlag } from './park.js';
import {
  DirentWriter,
  encodeAttrOut,
  encodeEntryOut,
  encodeGetxattrOut,
  encodeInitOut,
  encodeLkOut,
  encodeOpenOut,
  encodeOutHeader,
  encodeStatfsOut,
  encodeU64Out,
  encodeWriteOut,
  newAttrOut,
  type AttrOut,
  newEntryOut,
  newStatfsOut,
  replyBufferSize,
  requestBufferSize,
  resetAttr,
  resetEntryOut,
  type FileLock,
  type OpenOut,
} from './replies.js';
import { RequestDecoder, type FuseRequest, type InitRequest } from './requests.js';
import { writeStderrLine } from './stderr-line.js';

/** INIT flags we ask for (intersected with what the kernel offers). No writeback cache, no splice, no async read. */
export const DEFAULT_INIT_FLAGS =
  InitFlag.POSIX_LOCKS |
  InitFlag.EXPLICIT_INVAL_DATA |
  InitFlag.BIG_WRITES |
  InitFlag.MAX_PAGES |
  InitFlag.ATOMIC_O_TRUNC |
  InitFlag.PARALLEL_DIROPS |
  InitFlag.DO_READDIRPLUS |
  InitFlag.READDIRPLUS_AUTO;

const PAGE_SIZE = 4096;

/**
 * The /dev/fuse side of a session: one request per read, one message per
 * write. Errors are Node system errors (`code` ENODEV = unmounted). Tests
 * substitute a scripted device.
 */
export interface FuseDevice {
  read(buf: Buffer): number;
  write(buf: Buffer, len: number): void;
}

/** The real device: synchronous read(2)/write(2) on the /dev/fuse descriptor. */
export function fdDevice(fd: number): FuseDevice {
  return {
    // position null: plain read(2); /dev/fuse cannot pread.
    read: (buf) => readSync(fd, buf, 0, buf.length, null),
    write: (buf, len) => {
      writeSync(fd, buf, 0, len);
    },
  };
}

export interface SessionOptions {
  /** The /dev/fuse descriptor (already mounted). */
  readonly fd: number;
  /** Overrides reads and writes of `fd` (tests). */
  readonly device?: FuseDevice;
  readonly handler: FuseHandler;
  /** Largest WRITE the kernel may send (default 1 MiB); max_pages follows from it. */
  readonly maxWrite?: number;
  /** INIT flags to ask for (default DEFAULT_INIT_FLAGS). */
  readonly initFlags?: number;
  /** Ports drained before and after every request; their messages go to handler.onMessage. */
  readonly ports?: readonly MessagePort[];
  /** Notices queued by the handler are flushed after every request. */
  readonly notices?: NoticeQueue;
  /** Set while the loop is parked in read() (senders wake it only then). */
  readonly park?: ParkFlag;
  /** Called once INIT has been answered. */
  readonly onInit?: (conn: ConnInfo) => void;
  /** A line per request and per error reply, when set. */
  readonly log?: (line: string) => void;
}

export class FuseSession {
  readonly fd: number;
  readonly notices: NoticeQueue | undefined;
  private readonly device: FuseDevice;
  private readonly handler: FuseHandler;
  private readonly maxWrite: number;
  private readonly wantFlags: number;
  private readonly ports: readonly MessagePort[];
  private readonly park: ParkFlag | undefined;
  private readonly onInit: ((conn: ConnInfo) => void) | undefined;
  private readonly log: ((line: string) => void) | undefined;

  private readonly inBuf: Buffer;
  private readonly outBuf: Buffer;
  /** For deferred replies, which may be sent while outBuf holds another reply in progress. */
  private readonly lateBuf = Buffer.alloc(OUT_HEADER_SIZE + 256);
  private readonly decoder = new RequestDecoder();
  private readonly deferred = new Set<number>();

  private readonly entryOut = newEntryOut();
  private readonly attrOut = newAttrOut();
  private readonly openOut: OpenOut = { fh: 0, openFlags: 0 };
  private readonly statfsOut = newStatfsOut();
  private readonly lockOut: FileLock = { start: 0, end: 0, type: 0, pid: 0 };
  private readonly dirents = new DirentWriter();

  private conn: ConnInfo | undefined;
  private lastWrittenSeq = 0;
  private stopped = false;
  /** Requests served, for tests and stats. */
  requests = 0;

  constructor(opts: SessionOptions) {
    this.fd = opts.fd;
    this.device = opts.device ?? fdDevice(opts.fd);
    this.handler = opts.handler;
    this.maxWrite = opts.maxWrite ?? 1024 * 1024;
    this.wantFlags = opts.initFlags ?? DEFAULT_INIT_FLAGS;
    this.ports = opts.ports ?? [];
    this.notices = opts.notices;
    this.park = opts.park;
    this.onInit = opts.onInit;
    this.log = opts.log;
    this.inBuf = Buffer.allocUnsafe(requestBufferSize(this.maxWrite));
    // READs are bounded by max_pages, which INIT rounds up from max_write.
    this.outBuf = Buffer.allocUnsafe(replyBufferSize(maxPagesFor(this.maxWrite) * PAGE_SIZE));
  }

  /** What INIT negotiated (undefined before INIT). */
  get connection(): ConnInfo | undefined {
    return this.conn;
  }

  /** Ends run() after the current request (the loop may still be parked in read until the next one). */
  stop(): void {
    this.stopped = true;
  }

  /** Serves requests until the file system is unmounted (read fails with ENODEV). */
  run(): void {
    // One drain per request, just before the next read, so messages never
    // wait longer than one request; the park flag goes up before it (park.ts).
    while (!this.stopped) {
      this.park?.park();
      this.drain();
      let n: number;
      try {
        n = this.device.read(this.inBuf);
      } catch (err) {
        const code = errorCode(err);
        // EINTR/EAGAIN: retry. ENOENT: the request was interrupted before we read it.
        if (code === 'EINTR' || code === 'EAGAIN' || code === 'ENOENT') continue;
        if (code === 'ENODEV') break;
        throw err;
      } finally {
        this.park?.unpark();
      }
      if (n === 0) break;
      this.requests++;
      this.dispatch(n);
    }
    this.destroyOnce();
  }

  private destroyed = false;

  /** handler.destroy, once: on DESTROY or at the end of the loop, whichever comes first. */
  private destroyOnce(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.handler.destroy?.();
  }

  /** Answers a request a handler DEFERRED. `errno` positive for an error, 0 for success. */
  complete(unique: number, errno = 0, payload?: Uint8Array): void {
    if (!this.deferred.delete(unique)) return;
    const len = OUT_HEADER_SIZE + (payload?.length ?? 0);
    const buf = len <= this.lateBuf.length ? this.lateBuf : Buffer.allocUnsafe(len);
    encodeOutHeader(buf, 0, len, errno === 0 ? 0 : -errno, unique);
    if (payload !== undefined) buf.set(payload, OUT_HEADER_SIZE);
    this.log?.(`   unique=${unique} deferred reply errno=${errno}`);
    this.write(buf, len);
  }

  /** Completes a deferred WRITE: `size` bytes were written. */
  completeWrite(unique: number, size: number): void {
    const payload = Buffer.alloc(8);
    encodeWriteOut(payload, 0, size);
    this.complete(unique, 0, payload);
  }

  /** Completes a deferred SETATTR with the file's attributes now. */
  completeAttr(unique: number, attr: AttrOut): void {
    const payload = Buffer.alloc(256);
    const len = encodeAttrOut(payload, 0, attr);
    this.complete(unique, 0, payload.subarray(0, len));
  }

  /** True while `unique` waits for complete(). */
  isDeferred(unique: number): boolean {
    return this.deferred.has(unique);
  }

  private drain(): void {
    for (const port of this.ports) {
      for (;;) {
        const m = receiveMessageOnPort(port);
        if (m === undefined) break;
        try {
          this.handler.onMessage?.(m.message);
        } catch (err) {
          // A failed command must not take the mount down with it.
          writeStderrLine(`fuse: onMessage failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        }
      }
    }
    if (this.handler.afterRequest !== undefined) {
      try {
        this.handler.afterRequest();
      } catch (err) {
        writeStderrLine(`fuse: afterRequest failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      }
    }
    const q = this.notices;
    // Nothing queued since the last acknowledgement: skip the shared counter
    // (an Atomics load plus a BigInt per request).
    if (q !== undefined && q.queued() !== this.lastWrittenSeq) {
      q.flush();
      const written = q.written();
      if (written !== this.lastWrittenSeq) {
        this.lastWrittenSeq = written;
        this.handler.onNoticesWritten?.(written);
      }
    }
  }

  private dispatch(n: number): void {
    let req: FuseRequest;
    try {
      req = this.decoder.decode(this.inBuf, n);
    } catch (err) {
      if (!(err instanceof FuseDecodeError)) throw err;
      this.log?.(`bad request: ${err.message}`);
      const unique = n >= 16 ? this.decoder.header.unique : 0;
      if (unique !== 0) this.replyError(unique, Errno.EIO);
      return;
    }
    const h = req.header;
    this.log?.(`-> unique=${h.unique} ${opcodeName(h.opcode)} ino=${h.nodeid} pid=${h.pid}${describe(req)}`);
    // Marked before the handler runs, so it may complete() the request from inside.
    const deferrable = isDeferrable(h.opcode);
    if (deferrable) this.deferred.add(h.unique);
    try {
      this.serve(req);
    } catch (err) {
      const errno = errnoOf(err);
      if (errno === Errno.EIO && !isExpectedError(err)) {
        this.log?.(`   handler error in ${opcodeName(h.opcode)}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
      }
      // A deferrable request the handler already completed must not get a second reply.
      if (deferrable && !this.deferred.delete(h.unique)) return;
      if (!noReply(h.opcode)) this.replyError(h.unique, errno);
    }
  }

  /** Calls the handler for one request and sends the reply. */
  private serve(req: FuseRequest): void {
    const h = req.header;
    const hd = this.handler;
    const out = this.outBuf;
    const O = OUT_HEADER_SIZE;
    switch (req.opcode) {
      case Opcode.INIT:
        return this.init(req);
      case Opcode.LOOKUP: {
        if (hd.lookup === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        resetEntryOut(this.entryOut);
        hd.lookup(req, this.entryOut);
        if (this.entryOut.nodeid === 0 && this.entryOut.entryValid === 0) return this.replyError(h.unique, Errno.ENOENT);
        return this.reply(h.unique, encodeEntryOut(out, O, this.entryOut));
      }
      case Opcode.FORGET:
        hd.forget?.(h.nodeid, req.nlookup);
        return;
      case Opcode.BATCH_FORGET:
        if (hd.forget !== undefined) {
          for (let i = 0; i < req.count; i++) hd.forget(req.nodeids[i]!, req.nlookups[i]!);
        }
        return;
      case Opcode.INTERRUPT: {
        const u = req.interruptedUnique;
        // Requests answered synchronously are already done; only deferred ones can be cancelled.
        if (this.deferred.has(u) && hd.interrupt?.(u) === true) this.complete(u, Errno.EINTR);
        return;
      }
      case Opcode.GETATTR: {
        if (hd.getattr === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        this.attrOut.attrValid = 0;
        resetAttr(this.attrOut.attr);
        hd.getattr(req, this.attrOut);
        return this.reply(h.unique, encodeAttrOut(out, O, this.attrOut));
      }
      case Opcode.SETATTR: {
        if (hd.setattr === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        this.attrOut.attrValid = 0;
        resetAttr(this.attrOut.attr);
        if (hd.setattr(req, this.attrOut) === DEFERRED || !this.deferred.delete(h.unique)) return;
        return this.reply(h.unique, encodeAttrOut(out, O, this.attrOut));
      }
      case Opcode.READLINK: {
        if (hd.readlink === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        const target = hd.readlink(req);
        const len = out.write(target, O, 'utf8');
        return this.reply(h.unique, len);
      }
      case Opcode.SYMLINK:
        return this.entryReply(h.unique, hd.symlink === undefined ? undefined : (e) => hd.symlink!(req, e));
      case Opcode.MKNOD:
        return this.entryReply(h.unique, hd.mknod === undefined ? undefined : (e) => hd.mknod!(req, e));
      case Opcode.MKDIR:
        return this.entryReply(h.unique, hd.mkdir === undefined ? undefined : (e) => hd.mkdir!(req, e));
      case Opcode.LINK:
        return this.entryReply(h.unique, hd.link === undefined ? undefined : (e) => hd.link!(req, e));
      case Opcode.UNLINK:
        if (hd.unlink === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        return this.finish(h.unique, hd.unlink(req));
      case Opcode.RMDIR:
        if (hd.rmdir === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        return this.finish(h.unique, hd.rmdir(req));
      case Opcode.RENAME:
      case Opcode.RENAME2:
        if (hd.rename === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        return this.finish(h.unique, hd.rename(req));
      case Opcode.OPEN:
      case Opcode.OPENDIR: {
        const fn = req.opcode === Opcode.OPEN ? hd.open : hd.opendir;
        if (fn === undefined) {
          // No open handler: a stateless file system; fh 0 is fine.
          this.openOut.fh = 0;
          this.openOut.openFlags = 0;
        } else {
          this.openOut.fh = 0;
          this.openOut.openFlags = 0;
          fn.call(hd, req, this.openOut);
        }
        return this.reply(h.unique, encodeOpenOut(out, O, this.openOut));
      }
      case Opcode.READ: {
        if (hd.read === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        // Never more than the reply buffer holds (the kernel never asks for more than max_pages).
        if (req.size > out.length - O) req.size = out.length - O;
        const n = hd.read(req, out, O);
        return this.reply(h.unique, Math.max(0, Math.min(n, req.size)));
      }
      case Opcode.WRITE: {
        if (hd.write === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        const n = hd.write(req);
        if (n === DEFERRED || !this.deferred.delete(h.unique)) return;
        return this.reply(h.unique, encodeWriteOut(out, O, n));
      }
      case Opcode.STATFS: {
        if (hd.statfs === undefined) {
          // libfuse's default: a file system with no statfs still answers, with namelen 255.
          Object.assign(this.statfsOut, newStatfsOut(), { namelen: 255, bsize: 512 });
        } else {
          Object.assign(this.statfsOut, newStatfsOut());
          hd.statfs(req, this.statfsOut);
        }
        return this.reply(h.unique, encodeStatfsOut(out, O, this.statfsOut));
      }
      case Opcode.RELEASE:
        hd.release?.(req);
        return this.reply(h.unique, 0);
      case Opcode.RELEASEDIR:
        hd.releasedir?.(req);
        return this.reply(h.unique, 0);
      case Opcode.FSYNC:
        if (hd.fsync === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        return this.finish(h.unique, hd.fsync(req));
      case Opcode.FSYNCDIR:
        if (hd.fsyncdir === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        return this.finish(h.unique, hd.fsyncdir(req));
      case Opcode.FLUSH:
        if (hd.flush === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        return this.finish(h.unique, hd.flush(req));
      case Opcode.SETXATTR:
        if (hd.setxattr === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        hd.setxattr(req);
        return this.reply(h.unique, 0);
      case Opcode.GETXATTR:
      case Opcode.LISTXATTR: {
        const value = req.opcode === Opcode.GETXATTR ? hd.getxattr?.(req) : hd.listxattr?.(req);
        if (value === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        if (req.size === 0) return this.reply(h.unique, encodeGetxattrOut(out, O, value.length));
        if (value.length > req.size || value.length > out.length - O) return this.replyError(h.unique, Errno.ERANGE);
        out.set(value, O);
        return this.reply(h.unique, value.length);
      }
      case Opcode.REMOVEXATTR:
        if (hd.removexattr === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        hd.removexattr(req);
        return this.reply(h.unique, 0);
      case Opcode.READDIR:
      case Opcode.READDIRPLUS: {
        const plus = req.opcode === Opcode.READDIRPLUS;
        const fn = plus ? hd.readdirplus : hd.readdir;
        if (fn === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        this.dirents.reset(out, O, req.size, plus);
        fn.call(hd, req, this.dirents);
        return this.reply(h.unique, this.dirents.length);
      }
      case Opcode.GETLK: {
        if (hd.getlk === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        const l = this.lockOut;
        // The kernel rejects a reply whose range is invalid even for F_UNLCK,
        // so "no conflict" echoes the asked range.
        l.start = req.start;
        l.end = req.end;
        l.type = LockType.UNLCK;
        l.pid = 0;
        hd.getlk(req, l);
        return this.reply(h.unique, encodeLkOut(out, O, l));
      }
      case Opcode.SETLK:
      case Opcode.SETLKW:
        if (hd.setlk === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        return this.finish(h.unique, hd.setlk(req));
      case Opcode.ACCESS:
        if (hd.access === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        hd.access(req);
        return this.reply(h.unique, 0);
      case Opcode.CREATE: {
        if (hd.create === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        resetEntryOut(this.entryOut);
        this.openOut.fh = 0;
        this.openOut.openFlags = 0;
        hd.create(req, this.entryOut, this.openOut);
        const n = encodeEntryOut(out, O, this.entryOut);
        return this.reply(h.unique, n + encodeOpenOut(out, O + n, this.openOut));
      }
      case Opcode.BMAP:
        if (hd.bmap === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        return this.reply(h.unique, encodeU64Out(out, O, hd.bmap(req)));
      case Opcode.DESTROY:
        this.destroyOnce();
        this.stopped = true;
        return this.reply(h.unique, 0);
      case Opcode.FALLOCATE:
        if (hd.fallocate === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        hd.fallocate(req);
        return this.reply(h.unique, 0);
      case Opcode.LSEEK:
        if (hd.lseek === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        return this.reply(h.unique, encodeU64Out(out, O, hd.lseek(req)));
      case Opcode.COPY_FILE_RANGE:
        if (hd.copyFileRange === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        return this.reply(h.unique, encodeWriteOut(out, O, hd.copyFileRange(req)));
      case Opcode.SYNCFS:
        if (hd.syncfs === undefined) return this.replyError(h.unique, Errno.ENOSYS);
        hd.syncfs(req);
        return this.reply(h.unique, 0);
      case Opcode.NOTIFY_REPLY:
        // Answer to a NOTIFY_RETRIEVE we never send: nothing to do, no reply.
        return;
      default:
        // IOCTL, POLL, TMPFILE, STATX, SETUPMAPPING, REMOVEMAPPING,
        // COPY_FILE_RANGE_64 and unknown opcodes: ENOSYS makes the kernel
        // stop asking (or fall back) where it can.
        return this.replyError(h.unique, Errno.ENOSYS);
    }
  }

  /** Replies 0 to a deferrable request, unless the handler deferred it or already completed it. */
  private finish(unique: number, result: void | typeof DEFERRED): void {
    if (result === DEFERRED) return;
    if (!this.deferred.delete(unique)) return;
    this.reply(unique, 0);
  }

  private entryReply(unique: number, fn: ((e: typeof this.entryOut) => void) | undefined): void {
    if (fn === undefined) return this.replyError(unique, Errno.ENOSYS);
    resetEntryOut(this.entryOut);
    fn(this.entryOut);
    this.reply(unique, encodeEntryOut(this.outBuf, OUT_HEADER_SIZE, this.entryOut));
  }

  private init(req: InitRequest): void {
    const h = req.header;
    if (req.major < FUSE_KERNEL_VERSION) {
      this.log?.(`kernel speaks FUSE ${req.major}.${req.minor}; need 7.x`);
      return this.replyError(h.unique, 71 /* EPROTO */);
    }
    if (req.major > FUSE_KERNEL_VERSION) {
      // Tell the kernel our major; it will send a new INIT with it.
      const n = encodeInitOut(this.outBuf, OUT_HEADER_SIZE, {
        major: FUSE_KERNEL_VERSION, minor: FUSE_KERNEL_MINOR_VERSION, maxReadahead: 0, flags: 0,
        maxBackground: 0, congestionThreshold: 0, maxWrite: 0, timeGran: 0, maxPages: 0, mapAlignment: 0, flags2: 0,
      });
      return this.reply(h.unique, n);
    }
    const minor = Math.min(req.minor, FUSE_KERNEL_MINOR_VERSION);
    const flags = (req.flags & this.wantFlags) >>> 0;
    const maxPages = maxPagesFor(this.maxWrite);
    const conn: ConnInfo = {
      major: FUSE_KERNEL_VERSION,
      minor,
      kernelMinor: req.minor,
      kernelFlags: req.flags >>> 0,
      flags,
      maxWrite: this.maxWrite,
      maxReadahead: req.maxReadahead,
      maxPages,
    };
    this.decoder.setxattrExt = (flags & InitFlag.SETXATTR_EXT) !== 0;
    const n = encodeInitOut(this.outBuf, OUT_HEADER_SIZE, {
      major: FUSE_KERNEL_VERSION,
      minor,
      maxReadahead: req.maxReadahead,
      flags,
      maxBackground: 0,
      congestionThreshold: 0,
      maxWrite: this.maxWrite,
      timeGran: 1,
      maxPages,
      mapAlignment: 0,
      flags2: 0,
    });
    this.reply(h.unique, n);
    this.conn = conn;
    this.log?.(`   INIT kernel 7.${req.minor} flags=0x${req.flags.toString(16)} → 7.${minor} flags=0x${flags.toString(16)}`);
    this.handler.init?.(this, conn);
    this.onInit?.(conn);
  }

  private reply(unique: number, payloadLen: number): void {
    const len = OUT_HEADER_SIZE + payloadLen;
    encodeOutHeader(this.outBuf, 0, len, 0, unique);
    this.write(this.outBuf, len);
  }

  private replyError(unique: number, errno: number): void {
    encodeOutHeader(this.outBuf, 0, OUT_HEADER_SIZE, -errno, unique);
    this.log?.(`   unique=${unique} error ${errno}`);
    this.write(this.outBuf, OUT_HEADER_SIZE);
  }

  private write(buf: Buffer, len: number): void {
    try {
      this.device.write(buf, len);
    } catch (err) {
      const code = errorCode(err);
      // ENOENT: the request was interrupted and the kernel no longer waits for it.
      if (code === 'ENOENT') return;
      // ENODEV: unmounted meanwhile; the next read ends the loop.
      if (code === 'ENODEV') return;
      this.log?.(`reply write failed: ${err instanceof Error ? err.message : String(err)}`);
      if (code !== 'EINVAL') throw err;
    }
  }
}

/** max_pages for INIT: enough pages for one max_write, within the kernel's limit of 256. */
function maxPagesFor(maxWrite: number): number {
  return Math.max(1, Math.min(256, Math.ceil(maxWrite / PAGE_SIZE)));
}

/**
 * Requests a handler may answer later (return DEFERRED, then
 * session.complete): lock requests, and the points where an application
 * waits for durability (WRITE, FSYNC, FLUSH) or a name change.
 */
function isDeferrable(op: number): boolean {
  return (
    op === Opcode.SETATTR ||
    op === Opcode.SETLK ||
    op === Opcode.SETLKW ||
    op === Opcode.WRITE ||
    op === Opcode.FSYNC ||
    op === Opcode.FSYNCDIR ||
    op === Opcode.FLUSH ||
    op === Opcode.UNLINK ||
    op === Opcode.RMDIR ||
    op === Opcode.RENAME ||
    op === Opcode.RENAME2
  );
}

function noReply(op: number): boolean {
  return op === Opcode.FORGET || op === Opcode.BATCH_FORGET || op === Opcode.INTERRUPT || op === Opcode.NOTIFY_REPLY;
}

function isExpectedError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && ('errno' in err || 'code' in err);
}

/** A short description of a request's arguments for debug logs. */
function describe(req: FuseRequest): string {
  switch (req.opcode) {
    case Opcode.LOOKUP:
    case Opcode.UNLINK:
    case Opcode.RMDIR:
    case Opcode.MKDIR:
    case Opcode.MKNOD:
    case Opcode.CREATE:
      return ` name=${JSON.stringify(req.name)}`;
    case Opcode.READ:
    case Opcode.WRITE:
    case Opcode.READDIR:
    case Opcode.READDIRPLUS: {
      return ` fh=${req.fh} off=${req.offset} size=${req.size}`;
    }
    case Opcode.GETLK:
    case Opcode.SETLK:
    case Opcode.SETLKW: {
      return ` owner=${req.owner.toString(16)} type=${req.type} ${req.start}-${req.end}`;
    }
    case Opcode.FLUSH:
      return ` owner=${req.lockOwner.toString(16)}`;
    default:
      return '';
  }
}
