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

/** Batches small writes into `size`-byte chunks before passing them on. */
export class BufferedSink implements ByteSink {
  private readonly buf: Uint8Array;
  private fill = 0;

  constructor(
    private readonly sink: ByteSink,
    size = 64 * 1024,
  ) {
    this.buf = new Uint8Array(size);
  }

  write(chunk: Uint8Array): void {
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
