/**
 * Synchronous byte sources for the file helpers and the compactor: an
 * in-memory buffer, an open file descriptor, or a path. Reading is in bounded
 * chunks so memory stays constant whatever the file size.
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** Reads up to buf.length bytes into buf; returns 0 at end of input. */
export interface SyncReader {
  read(buf: Uint8Array): number;
}

/** An in-memory file, a file descriptor (read from its current position), a path, or a reader. */
export type SyncSource = Uint8Array | number | string | SyncReader;

export const READ_CHUNK = 64 * 1024;

/**
 * Calls `fn(chunk)` for each chunk of the source, in order. A Uint8Array is
 * passed whole (no copy); files are read in READ_CHUNK pieces into one
 * reused buffer.
 */
export function forEachChunk(source: SyncSource, fn: (chunk: Uint8Array) => void): void {
  if (source instanceof Uint8Array) {
    fn(source);
    return;
  }
  // One buffer per thread, reused (a nested call gets its own): a replica
  // reads every applied file through here, and a fresh 64 KiB per file was
  // garbage the collector paused the FUSE thread for.
  const buf = spareChunk ?? new Uint8Array(READ_CHUNK);
  spareChunk = null;
  try {
    withReader(source, (reader) => {
      for (;;) {
        const n = reader.read(buf);
        if (n <= 0) return;
        fn(buf.subarray(0, n));
      }
    });
  } finally {
    spareChunk = buf;
  }
}

let spareChunk: Uint8Array | null = null;

/** Runs `fn` with a reader over the source; a path is opened and closed here. */
export function withReader<T>(source: Exclude<SyncSource, Uint8Array> | Uint8Array, fn: (r: SyncReader) => T): T {
  if (source instanceof Uint8Array) return fn(bufferReader(source));
  if (typeof source === 'number') return fn(fdReader(source));
  if (typeof source === 'string') {
    const fd = openSync(source, 'r');
    try {
      return fn(fdReader(fd));
    } finally {
      closeSync(fd);
    }
  }
  return fn(source);
}

export function fdReader(fd: number): SyncReader {
  return { read: (buf) => readSync(fd, buf, 0, buf.length, null) };
}

export function bufferReader(bytes: Uint8Array): SyncReader {
  let pos = 0;
  return {
    read(buf) {
      const n = Math.min(buf.length, bytes.length - pos);
      buf.set(bytes.subarray(pos, pos + n));
      pos += n;
      return n;
    },
  };
}
