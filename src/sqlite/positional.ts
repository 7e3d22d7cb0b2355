/**
 * The one I/O seam of src/sqlite: readers take "read these bytes at this
 * offset" and "how big is the file", so the store can back them with
 * fs.readSync on a descriptor and tests with a Buffer.
 */
export interface PositionalReader {
  /**
   * Reads up to `buf.length` bytes at `offset` into `buf` and returns how
   * many were read. May return fewer than asked; 0 means end of file.
   */
  readAt(buf: Uint8Array, offset: number): number;
  /** Current size of the file in bytes. */
  size(): number;
}

/** A PositionalReader over bytes held in memory. */
export function bufferReader(data: Uint8Array): PositionalReader {
  return {
    readAt(buf: Uint8Array, offset: number): number {
      if (offset >= data.length) return 0;
      const n = Math.min(buf.length, data.length - offset);
      buf.set(data.subarray(offset, offset + n), 0);
      return n;
    },
    size: () => data.length,
  };
}

/**
 * Fills `buf` from `offset`, looping over short reads. Returns false if the
 * file ends first (the content of `buf` is then unspecified).
 */
export function readExactly(src: PositionalReader, buf: Uint8Array, offset: number): boolean {
  let done = 0;
  while (done < buf.length) {
    const n = src.readAt(done === 0 ? buf : buf.subarray(done), offset + done);
    if (n <= 0) return false;
    done += n;
  }
  return true;
}
