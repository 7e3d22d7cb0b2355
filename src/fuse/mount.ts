/**
 * FuseMount: the main thread's handle on one FUSE mount. It clears a stale
 * mount at the path, opens /dev/fuse, runs `mount -i -t fuse.<type> -o
 * fd=3,...` with the descriptor as the child's fd 3, and starts two threads:
 * the FUSE worker (the caller's script; serves requests synchronously) and
 * the notifier (writes invalidation notices). close() unmounts; the worker
 * then reads ENODEV and ends.
 */
import { EventEmitter } from 'node:events';
import { closeSync, mkdirSync, openSync, promises as fsp, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { runCommand } from './commands.js';
import { MountError, errorCode } from './errors.js';
import type { ConnInfo } from './handler.js';
import type { Notice, NoticeAck, NoticeBatch } from './notices.js';
import { abortConnection, clearStaleMount, findMount, mountState } from './stale-mount.js';
import { type LogLineFormat, PLAIN_LINES, writeStderrLine } from './stderr-line.js';
import type { FuseWorkerData, FuseWorkerStatus } from './worker-runtime.js';
import type { NotifierWorkerData } from './notifier-worker.js';
import { PARK_SHARED_BYTES, ParkFlag } from './park.js';

export interface FuseMountOptions {
  readonly mountpoint: string;
  /** The FUSE worker script (calls runFuseWorker). */
  readonly workerScript: string | URL;
  /** Passed to the script's handler factory (structured-cloned). */
  readonly workerData?: unknown;
  /** Mount source shown in /proc/mounts (default 'fuse-ts'). */
  readonly fsName?: string;
  /** Subtype: the mount's type is fuse.<fsType> (default 'fuse-ts'). */
  readonly fsType?: string;
  readonly allowOther?: boolean;
  /** Log every request to stderr. */
  readonly debug?: boolean;
  /** Largest WRITE (default 1 MiB). */
  readonly maxWrite?: number;
  /** INIT flags to ask for (default: session.ts DEFAULT_INIT_FLAGS). */
  readonly initFlags?: number;
  /** Unmount on SIGINT/SIGTERM (default true); the 'signal' event fires first. */
  readonly handleSignals?: boolean;
  /** Mount-time log lines (stale mount cleared, ...). */
  readonly log?: (line: string) => void;
  /** How the FUSE and notifier threads write their log lines (default plain text). */
  readonly logFormat?: LogLineFormat;
}


export interface FuseMountEvents {
  message: [msg: unknown];
  signal: [signal: NodeJS.Signals];
  closed: [];
}

export class FuseMount extends EventEmitter<FuseMountEvents> {
  readonly mountpoint: string;
  /** What INIT negotiated. */
  readonly conn: ConnInfo;
  private readonly fd: number;
  private readonly worker: Worker;
  private readonly notifier: Worker;
  private readonly commandPort: MessagePort;
  private readonly park: ParkFlag;
  private readonly workerExit: Promise<number>;
  private readonly signalHandler: ((sig: NodeJS.Signals) => void) | undefined;
  /** Minor device number of our mount (to tell it from a later mount at the same path). */
  private readonly device: number;
  private noticeSeq = 0;
  private readonly noticeWaiters = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private closing: Promise<void> | undefined;
  private workerEnded = false;
  /** The worker died of an error: our connection is alive but nobody serves it. */
  private workerFailed = false;

  private constructor(init: {
    mountpoint: string;
    conn: ConnInfo;
    fd: number;
    worker: Worker;
    notifier: Worker;
    commandPort: MessagePort;
    park: ParkFlag;
    workerExit: Promise<number>;
    handleSignals: boolean;
    device: number;
  }) {
    super();
    this.mountpoint = init.mountpoint;
    this.conn = init.conn;
    this.fd = init.fd;
    this.worker = init.worker;
    this.notifier = init.notifier;
    this.commandPort = init.commandPort;
    this.park = init.park;
    this.workerExit = init.workerExit;
    this.device = init.device;
    this.worker.on('message', (msg: unknown) => {
      if (typeof msg === 'object' && msg !== null && 'fuseStatus' in msg) {
        const status = msg as FuseWorkerStatus;
        if (status.fuseStatus === 'failed') {
          this.workerFailed = true;
          writeStderrLine(`fuse: FUSE worker failed: ${status.message}`);
        }
        return;
      }
      this.emit('message', msg);
    });
    this.notifier.on('message', (ack: NoticeAck) => {
      const w = this.noticeWaiters.get(ack.ackSeq);
      if (w === undefined) return;
      this.noticeWaiters.delete(ack.ackSeq);
      w.resolve();
    });
    this.notifier.unref();
    this.worker.on('error', (err) => writeStderrLine(`fuse: FUSE worker error: ${err.stack ?? err.message}`));
    this.notifier.on('error', (err) => writeStderrLine(`fuse: notifier error: ${err.stack ?? err.message}`));
    // Unmounted from outside (or the worker died): clean up the rest and tell the owner.
    void this.workerExit.then((code) => {
      this.workerEnded = true;
      if (code !== 0) this.workerFailed = true;
      return this.close();
    });
    if (init.handleSignals) {
      this.signalHandler = (sig) => {
        this.emit('signal', sig);
        void this.close();
      };
      process.on('SIGINT', this.signalHandler);
      process.on('SIGTERM', this.signalHandler);
    }
  }

  /** Mounts and resolves once the kernel's INIT was answered (the mount is usable). */
  static async mount(opts: FuseMountOptions): Promise<FuseMount> {
    const mountpoint = resolve(opts.mountpoint);
    const log = opts.log ?? (() => {});
    await clearStaleMount(mountpoint, log);
    try {
      statSync(mountpoint);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
      mkdirSync(mountpoint, { recursive: true });
    }
    const fsType = opts.fsType ?? 'fuse-ts';
    const fsName = opts.fsName ?? 'fuse-ts';
    const fd = openSync('/dev/fuse', 'r+');
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    const mountOpts = `fd=3,rootmode=40000,user_id=${uid},group_id=${gid}${opts.allowOther === true ? ',allow_other' : ''}`;
    const res = await runCommand('mount', ['-i', '-t', `fuse.${fsType}`, '-o', mountOpts, fsName, mountpoint], [
      'ignore',
      'ignore',
      'pipe',
      fd,
    ]);
    if (res.code !== 0) {
      closeSync(fd);
      throw new MountError(`mount of ${mountpoint} failed (exit ${res.code}): ${res.stderr}`);
    }
    // Our mount's identity: a later daemon may mount over the same path, and
    // we must never unmount that one.
    const device = findMount(mountpoint)?.minor ?? -1;

    const shared = new SharedArrayBuffer(8);
    const parkShared = new SharedArrayBuffer(PARK_SHARED_BYTES);
    const noticeChannel = new MessageChannel();
    const commandChannel = new MessageChannel();
    const notifier = new Worker(new URL('./notifier-worker.js', import.meta.url), {
      workerData: {
        fd,
        mountpoint,
        shared,
        parkShared,
        fusePort: noticeChannel.port2,
        debug: opts.debug === true,
        logFormat: opts.logFormat ?? PLAIN_LINES,
      } satisfies NotifierWorkerData,
      transferList: [noticeChannel.port2],
    });
    const data: FuseWorkerData = {
      fd,
      mountpoint,
      maxWrite: opts.maxWrite ?? 1024 * 1024,
      initFlags: opts.initFlags,
      debug: opts.debug === true,
      logFormat: opts.logFormat ?? PLAIN_LINES,
      commandPort: commandChannel.port2,
      noticePort: noticeChannel.port1,
      noticeShared: shared,
      parkShared,
      user: opts.workerData,
    };
    const cleanUp = async (workerExit: Promise<number> | undefined): Promise<void> => {
      // Nobody will answer INIT now, and until it is answered every access
      // to the mount (umount's own stat included) waits: abort first.
      const entry = findMount(mountpoint);
      if (entry !== undefined && entry.minor === device) await abortConnection(entry);
      await unmount(mountpoint, device, log);
      if (workerExit !== undefined) await Promise.race([workerExit, delay(5000)]);
      await notifier.terminate();
      closeSync(fd);
    };
    let worker: Worker;
    try {
      worker = new Worker(opts.workerScript, {
        workerData: data,
        transferList: [commandChannel.port2, noticeChannel.port1],
      });
    } catch (err) {
      await cleanUp(undefined);
      throw err;
    }
    const workerExit = new Promise<number>((res) => worker.once('exit', res));
    let conn: ConnInfo;
    try {
      conn = await new Promise<ConnInfo>((res, rej) => {
        worker.on('message', (msg: FuseWorkerStatus) => {
          if (typeof msg !== 'object' || msg === null) return;
          if (msg.fuseStatus === 'ready') res(msg.conn);
          if (msg.fuseStatus === 'failed') rej(new MountError(`FUSE worker failed: ${msg.message}`));
        });
        worker.once('error', rej);
        worker.once('exit', (code) => rej(new MountError(`FUSE worker exited (${code}) before INIT`)));
      });
    } catch (err) {
      await cleanUp(workerExit);
      throw err;
    }
    commandChannel.port1.unref();
    return new FuseMount({
      mountpoint,
      conn,
      fd,
      worker,
      notifier,
      commandPort: commandChannel.port1,
      park: new ParkFlag(parkShared),
      workerExit,
      handleSignals: opts.handleSignals !== false,
      device,
    });
  }

  /** Posts a message to the FUSE thread's handler (onMessage) and wakes the thread. */
  send(msg: unknown): void {
    this.commandPort.postMessage(msg);
    // A busy thread drains its messages after its current request (park.ts).
    if (this.park.parked) this.wake();
  }

  /**
   * Makes the kernel send the FUSE thread one request so it drains its
   * messages: a STATFS of the mount, which takes no lock in the kernel's
   * VFS. (A LOOKUP in the root waits for the root's lock, which an UNLINK
   * holds while the handler has deferred its answer: no wake-up would come.)
   */
  wake(): void {
    fsp.statfs(this.mountpoint).catch(() => {});
  }

  /** Queues notices for the notifier thread; resolves once they are written. */
  notify(notices: Notice[]): Promise<void> {
    const seq = ++this.noticeSeq;
    const batch: NoticeBatch = { seq, notices, wake: false };
    return new Promise((res, rej) => {
      this.noticeWaiters.set(seq, { resolve: res, reject: rej });
      this.notifier.postMessage(batch);
    });
  }

  invalInode(ino: number, off = 0, len = 0): Promise<void> {
    return this.notify([{ kind: 'inval-inode', ino, off, len }]);
  }

  invalEntry(parent: number, name: string): Promise<void> {
    return this.notify([{ kind: 'inval-entry', parent, name }]);
  }

  notifyDelete(parent: number, child: number, name: string): Promise<void> {
    return this.notify([{ kind: 'delete', parent, child, name }]);
  }

  /** Resolves when the FUSE worker has ended (after unmount). */
  get ended(): Promise<number> {
    return this.workerExit;
  }

  /** Unmounts and waits for the threads to end. Safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.signalHandler !== undefined) {
      process.off('SIGINT', this.signalHandler);
      process.off('SIGTERM', this.signalHandler);
    }
    if (this.workerFailed) {
      // Nobody serves our (still mounted) connection: every access, umount's
      // own included, would wait forever. Cut it, then unmount.
      const entry = findMount(this.mountpoint);
      if (entry !== undefined && entry.minor === this.device) await abortConnection(entry);
      await unmount(this.mountpoint, this.device, () => {});
    } else if (!this.workerEnded) {
      // Our connection is alive, so our device number is still ours alone.
      await unmount(this.mountpoint, this.device, () => {});
    } else if ((await mountState(this.mountpoint)) === 'stale') {
      // Our connection ended (unmounted or aborted from outside). Device
      // numbers are reused, so only a dead mount at the path is cleared;
      // a live one belongs to another daemon.
      await clearStaleMount(this.mountpoint).catch(() => false);
    }
    let exited = await Promise.race([this.workerExit.then(() => true), delay(5000).then(() => false)]);
    if (!exited) {
      // A lazy unmount with files still open keeps the connection alive; cut it.
      const entry = findMount(this.mountpoint);
      if (entry !== undefined && entry.minor === this.device) await abortConnection(entry);
      else if (this.device >= 0) {
        await abortConnection({ mountId: 0, major: 0, minor: this.device, mountpoint: this.mountpoint, fstype: '', source: '' });
      }
      exited = await Promise.race([this.workerExit.then(() => true), delay(5000).then(() => false)]);
    }
    for (const w of this.noticeWaiters.values()) w.reject(new Error('mount closed'));
    this.noticeWaiters.clear();
    await this.notifier.terminate();
    this.commandPort.close();
    if (exited) closeSync(this.fd);
    this.emit('closed');
  }
}

/**
 * `umount`, falling back to `umount -l` (busy mount), if our mount (device
 * minor `device`) is still the one at the path. True when it is gone.
 */
async function unmount(mountpoint: string, device: number, log: (line: string) => void): Promise<boolean> {
  const mounted = (): boolean => {
    const e = findMount(mountpoint);
    return e !== undefined && e.fstype.startsWith('fuse') && e.minor === device;
  };
  if (!mounted()) return true;
  const r = await runCommand('umount', [mountpoint]);
  if (!mounted()) return true;
  log(`umount ${mountpoint}: ${r.stderr}; trying umount -l`);
  await runCommand('umount', ['-l', mountpoint]);
  return !mounted();
}

function delay(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms).unref());
}
