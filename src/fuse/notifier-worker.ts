/**
 * The notifier thread: writes invalidation notices to /dev/fuse so that
 * neither the FUSE thread (deadlock, see notices.ts) nor the main thread's
 * event loop (the kernel may block the write) has to. Batches arrive from
 * the main thread (parentPort, acknowledged by message) and from the FUSE
 * thread (its own port, acknowledged through a shared counter plus, if asked,
 * a wake-up LOOKUP so a thread parked in read() notices).
 */
import { statfs, writeSync } from 'node:fs';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { errorCode } from './errors.js';
import { WRITTEN_SEQ_SLOT, type Notice, type NoticeAck, type NoticeBatch } from './notices.js';
import { encodeDelete, encodeInvalEntry, encodeInvalInode, encodeStore } from './notify.js';
import { ParkFlag } from './park.js';
import { type LogLineFormat, configureLogLines, writeStderrLine } from './stderr-line.js';

export interface NotifierWorkerData {
  readonly fd: number;
  /** Path whose stat makes the kernel send the FUSE thread a LOOKUP. */
  /** A STATFS of it wakes the FUSE thread (mount.ts wake). */
  readonly mountpoint: string;
  readonly shared: SharedArrayBuffer;
  /** The FUSE thread's ParkFlag: the wake-up LOOKUP is needed only while it is parked. */
  readonly parkShared: SharedArrayBuffer;
  readonly fusePort: MessagePort;
  readonly debug: boolean;
  readonly logFormat: LogLineFormat;
}

const data = workerData as NotifierWorkerData;
configureLogLines(data.logFormat);
// 64-bit: a busy replica can write more than 2^31 notices over its lifetime.
const shared = new BigInt64Array(data.shared);
const fuseThread = new ParkFlag(data.parkShared);
// A notice is a fixed struct plus one name of at most 255 bytes (NAME_MAX) and 4 KiB of slack.
const buf = Buffer.alloc(16 + 24 + 4096 + 256);

function log(line: string): void {
  if (data.debug) writeStderrLine(`fuse notifier: ${line}`);
}

function writeNotice(n: Notice): boolean {
  let len: number;
  let out = buf;
  switch (n.kind) {
    case 'store':
      if (40 + n.data.length > out.length) out = Buffer.alloc(40 + n.data.length);
      len = encodeStore(out, n.ino, n.off, n.data);
      break;
    case 'inval-inode':
      len = encodeInvalInode(buf, n.ino, n.off, n.len);
      break;
    case 'inval-entry':
      len = encodeInvalEntry(buf, n.parent, n.name);
      break;
    case 'delete':
      len = encodeDelete(buf, n.parent, n.child, n.name);
      break;
  }
  try {
    writeSync(data.fd, out, 0, len);
    return true;
  } catch (err) {
    const code = errorCode(err);
    // ENOENT: the kernel has nothing cached for it; nothing to invalidate.
    if (code === 'ENOENT') return true;
    log(`${n.kind} failed: ${code ?? String(err)}`);
    return false;
  }
}

function writeBatch(batch: NoticeBatch): number {
  let failures = 0;
  for (const n of batch.notices) if (!writeNotice(n)) failures++;
  return failures;
}

parentPort?.on('message', (batch: NoticeBatch) => {
  const failures = writeBatch(batch);
  const ack: NoticeAck = { ackSeq: batch.seq, failures };
  parentPort?.postMessage(ack);
});

data.fusePort.on('message', (batch: NoticeBatch) => {
  writeBatch(batch);
  Atomics.store(shared, WRITTEN_SEQ_SLOT, BigInt(batch.seq));
  if (batch.wake && fuseThread.parked) statfs(data.mountpoint, () => {});
});
