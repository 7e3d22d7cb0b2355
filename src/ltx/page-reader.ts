/**
 * Pull-style reading of an LTX file over the push decoder: `nextPage()`
 * advances to the next page and stops there, so several files can be read in
 * lock step (the compactor's merge) with one page of each in memory.
 */
import { LTXDecoder, type DecodeOptions, type DecodeSummary } from './decoder.js';
import type { Header } from './header.js';
import { READ_CHUNK, type SyncReader } from './source.js';

export class LTXPageReader {
  private readonly dec: LTXDecoder;
  private chunk: Uint8Array;
  private off = 0;
  private end: number;
  private readonly reader: SyncReader | null;
  private eof: boolean;
  /** The current page (valid until the next call). */
  pgno = 0;
  data: Uint8Array = new Uint8Array(0);
  private delivered = 0;

  /** `source` is a whole file in memory or a reader (read in 64 KiB chunks). */
  constructor(source: Uint8Array | SyncReader, opts: DecodeOptions = {}) {
    this.dec = new LTXDecoder(
      {
        onPage: (pgno, data) => {
          this.pgno = pgno;
          this.data = data;
          this.delivered++;
        },
      },
      opts,
    );
    if (source instanceof Uint8Array) {
      this.chunk = source;
      this.end = source.length;
      this.reader = null;
      this.eof = true;
    } else {
      this.chunk = new Uint8Array(READ_CHUNK);
      this.end = 0;
      this.reader = source;
      this.eof = false;
    }
  }

  /** Reads and validates the header. */
  readHeader(): Header {
    while (this.dec.header === null) this.pump();
    return this.dec.header;
  }

  /** Advances to the next page; false once the end marker has been read. */
  nextPage(): boolean {
    this.readHeader();
    const before = this.delivered;
    while (!this.dec.pagesEnded) {
      this.pump();
      if (this.delivered !== before) return true;
    }
    return false;
  }

  /** Reads the rest of the file and verifies its checksums. */
  finish(): DecodeSummary {
    while (!this.dec.done) this.pump();
    return this.dec.end();
  }

  private pump(): void {
    if (this.off === this.end && !this.dec.hasPendingOutput()) {
      if (this.eof || this.reader === null) {
        this.dec.end(); // throws: the input ended early
        return;
      }
      const n = this.reader.read(this.chunk);
      if (n <= 0) {
        this.eof = true;
        return;
      }
      this.off = 0;
      this.end = n;
    }
    this.off += this.dec.step(this.chunk, this.off, this.end - this.off);
  }
}
