/**
 * Where encoders write. Synchronous so one encoder serves both a file written
 * with fs.writeSync on the FUSE thread and a network stream on the main
 * thread.
 *
 * Contract: `chunk` is a view of the encoder's reusable buffer and is valid
 * only during the call. A sink that keeps it (a Node stream's write() does)
 * must copy it first, e.g. `stream.write(Buffer.from(chunk))`.
 */
export interface ByteSink {
  write(chunk: Uint8Array): void;
}

const DEFAULT_BUFFER_SIZE = 64 * 1024;
const RELEASED = new Uint8Array(0);

/**
 * Default-size buffers of released sinks, for the next sink on this thread:
 * the FUSE thread encodes an LTX file per commit, and allocating (and
 * zeroing) 64 KiB each time cost about 20 µs of a ~800 µs commit. The
 * contents are never read before being written.
 */
const spareBuffers: Uint8Array[] = [];
const SPARE_BUFFERS_MAX = 4;

/** Batches small writes into `size`-byte chunks before passing them on. */
export class BufferedSink implements ByteSink {
  private buf: Uint8Array;
  private fill = 0;

  constructor(
    private readonly sink: ByteSink,
    size = DEFAULT_BUFFER_SIZE,
  ) {
    this.buf = (size === DEFAULT_BUFFER_SIZE ? spareBuffers.pop() : undefined) ?? new Uint8Array(size);
  }

  /** Flushes, then hands the buffer to the next sink on this thread; later writes fail. */
  release(): void {
    this.flush();
    if (this.buf.length === DEFAULT_BUFFER_SIZE && spareBuffers.length < SPARE_BUFFERS_MAX) spareBuffers.push(this.buf);
    this.buf = RELEASED;
  }

  write(chunk: Uint8Array): void {
    if (this.buf === RELEASED) throw new Error('BufferedSink: write after release');
    let pos = 0;
    // A chunk at least as large as the buffer skips the copy when nothing is pending.
    if (this.fill === 0 && chunk.length >= this.buf.length) {
      this.sink.write(chunk);
      return;
    }
    while (pos < chunk.length) {
      const n = Math.min(this.buf.length - this.fill, chunk.length - pos);
      this.buf.set(chunk.subarray(pos, pos + n), this.fill);
      this.fill += n;
      pos += n;
      if (this.fill === this.buf.length) this.flush();
    }
  }

  flush(): void {
    if (this.fill === 0) return;
    this.sink.write(this.buf.subarray(0, this.fill));
    this.fill = 0;
  }
}

/** A sink that collects copies of everything written, for tests and small files. */
export class CollectSink implements ByteSink {
  private readonly chunks: Uint8Array[] = [];
  length = 0;

  write(chunk: Uint8Array): void {
    this.chunks.push(chunk.slice());
    this.length += chunk.length;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}
