/**
 * Log lines, written to stderr synchronously: from threads that cannot wait
 * for an event loop (the FUSE thread, the notifier) and, in `litefs mount`,
 * from the main thread too, so every line has the same shape
 * (`log.format`, `log.timestamp`: configureLogLines, once per thread).
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

/** How lines look: plain text (optionally after an ISO time) or one JSON object a line. */
export interface LogLineFormat {
  readonly format: 'text' | 'json';
  readonly timestamp: boolean;
}

/** Lines as they are written: no time, no structure. */
export const PLAIN_LINES: LogLineFormat = { format: 'text', timestamp: false };

let lineFormat: LogLineFormat = PLAIN_LINES;

/** Sets this thread's line format (each worker thread has its own copy of this module). */
export function configureLogLines(format: LogLineFormat): void {
  lineFormat = format;
}

/**
 * One log line as `format` wants it. JSON lines carry `time` (only with
 * `timestamp`, as LiteFS's slog handler), `level` (ERROR for lines that
 * start with ERROR or FATAL, WARN for WARNING, after at most one `name: `
 * prefix such as `fuse: `; else INFO) and `msg`.
 */
export function formatLogLine(line: string, format: LogLineFormat, now: Date = new Date()): string {
  if (format.format === 'json') {
    const level = /^(?:[\w. -]+: )?(?:ERROR|FATAL)\b/.test(line) ? 'ERROR' : /^(?:[\w. -]+: )?WARN(?:ING)?\b/.test(line) ? 'WARN' : 'INFO';
    return JSON.stringify(format.timestamp ? { time: now.toISOString(), level, msg: line } : { level, msg: line });
  }
  return format.timestamp ? `${now.toISOString()} ${line}` : line;
}

/** Writes `line` and a newline to stderr. */
export function writeStderrLine(line: string): void {
  const lines = dropped === 0 ? [line] : [`(${dropped} log lines dropped: stderr was full)`, line];
  const text = lines.map((l) => `${formatLogLine(l, lineFormat)}\n`).join('');
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
