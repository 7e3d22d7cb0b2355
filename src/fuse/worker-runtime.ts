/**
 * Bootstrap of the FUSE worker thread. A file system's worker script calls
 * `runFuseWorker(makeHandler)` at top level; FuseMount (main thread) starts
 * that script with FuseWorkerData. The call serves requests until unmount and
 * then ends the thread.
 */
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { ConnInfo, FuseHandler } from './handler.js';
import { NoticeQueue } from './notices.js';
import { ParkFlag } from './park.js';
import { FuseSession } from './session.js';
import { type LogLineFormat, configureLogLines, writeStderrLine } from './stderr-line.js';

/** What FuseMount passes to the worker (workerData). */
export interface FuseWorkerData {
  readonly fd: number;
  readonly mountpoint: string;
  readonly maxWrite: number;
  readonly initFlags: number | undefined;
  readonly debug: boolean;
  readonly logFormat: LogLineFormat;
  /** Main thread → FUSE thread messages (drained synchronously). */
  readonly commandPort: MessagePort;
  /** FUSE thread → notifier batches. */
  readonly noticePort: MessagePort;
  readonly noticeShared: SharedArrayBuffer;
  /** The FUSE thread's ParkFlag. */
  readonly parkShared: SharedArrayBuffer;
  /** The caller's own options for its handler. */
  readonly user: unknown;
}

/** Lifecycle messages the worker posts on parentPort (other messages are the handler's own). */
export type FuseWorkerStatus =
  | { readonly fuseStatus: 'ready'; readonly conn: ConnInfo }
  | { readonly fuseStatus: 'ended'; readonly requests: number }
  | { readonly fuseStatus: 'failed'; readonly message: string };

export interface FuseWorkerContext {
  readonly mountpoint: string;
  readonly notices: NoticeQueue;
  /** Posts a message to the main thread (FuseMount emits it as 'message'). */
  post(msg: unknown): void;
  log(line: string): void;
  readonly debug: boolean;
}

export function runFuseWorker(makeHandler: (user: unknown, ctx: FuseWorkerContext) => FuseHandler): void {
  if (isMainThread || parentPort === null) throw new Error('runFuseWorker must run in a worker thread');
  const port = parentPort;
  const d = workerData as FuseWorkerData;
  configureLogLines(d.logFormat);
  const log = (line: string): void => writeStderrLine(`fuse: ${line}`);
  const notices = new NoticeQueue(d.noticePort, new BigInt64Array(d.noticeShared));
  const ctx: FuseWorkerContext = {
    mountpoint: d.mountpoint,
    notices,
    post: (msg) => port.postMessage(msg),
    log,
    debug: d.debug,
  };
  let session: FuseSession;
  try {
    const handler = makeHandler(d.user, ctx);
    session = new FuseSession({
      fd: d.fd,
      handler,
      maxWrite: d.maxWrite,
      initFlags: d.initFlags,
      ports: [d.commandPort],
      notices,
      park: new ParkFlag(d.parkShared),
      onInit: (conn) => port.postMessage({ fuseStatus: 'ready', conn } satisfies FuseWorkerStatus),
      log: d.debug ? log : undefined,
    });
    session.run();
  } catch (err) {
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
    port.postMessage({ fuseStatus: 'failed', message } satisfies FuseWorkerStatus);
    process.exit(1);
  }
  port.postMessage({ fuseStatus: 'ended', requests: session.requests } satisfies FuseWorkerStatus);
  d.commandPort.close();
  d.noticePort.close();
  process.exit(0);
}
