/**
 * Log lines from threads that cannot wait for an event loop (the FUSE
 * thread, the notifier), written to stderr synchronously.
 *
 * A pipe on stderr is non-blocking (libuv sets O_NONBLOCK on it for the main
 * thread, and every thread shares the descriptor), so a plain writeSync
 * fails with EAGAIN whenever the reader falls behind: with `fuse.debug` a
 * burst of request lines took the FUSE thread, and the mount, down. A full
 * pipe is waited for (1 ms at a time) for up to a second per line; after
 * that the line is dropped and counted, so a reader that never reads cannot
 * hang the file system. Nothing here throws.
 */
import { writeSync } from 'node:fs';
import { errorCode } from './errors.js';

const STDERR_FD = 2;
const WAIT_SLICE_MS = 1;
const WAIT_LIMIT_MS = 1000;

const sleeper = new Int32Array(new SharedArrayBuffer(4));
let dropped = 0;

/** Writes `line` and a newline to stderr. */
export function writeStderrLine(line: string): void {
  const text = dropped === 0 ? `${line}\n` : `(${dropped} log lines dropped: stderr was full)\n${line}\n`;
  if (writeAll(Buffer.from(text))) dropped = 0;
  else dropped++;
}

function writeAll(buf: Buffer): boolean {
  let off = 0;
  let waitedMs = 0;
  while (off < buf.length) {
    try {
      off += writeSync(STDERR_FD, buf, off, buf.length - off);
    } catch (err) {
      if (errorCode(err) !== 'EAGAIN' || waitedMs >= WAIT_LIMIT_MS) return false;
      Atomics.wait(sleeper, 0, 0, WAIT_SLICE_MS);
      waitedMs += WAIT_SLICE_MS;
    }
  }
  return true;
}
