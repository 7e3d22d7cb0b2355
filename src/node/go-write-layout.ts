/**
 * Go LiteFS streams a snapshot by encoding it straight into the chunk
 * writer, so every write its ltx.Encoder (over pierrec/lz4) makes becomes
 * one chunk on the wire (test/fixtures/wire/README.md):
 *
 *   compressed:   header 100, LZ4 frame header 7, then per block: size 4,
 *                 data N; end mark + content checksum 8; trailer 16
 *   uncompressed: header 100, then per page: page header 4, page data;
 *                 end page header 4; trailer 16
 *
 * Our LTXEncoder batches its output, so this sink cuts the byte stream
 * back into those writes by following the format. It keeps at most one
 * piece (a page or an LZ4 block) in progress; finished pieces wait in
 * `pieces` until the caller takes them.
 */
import { HEADER_SIZE, HeaderFlagCompressLZ4, PAGE_HEADER_SIZE, TRAILER_SIZE, type ByteSink } from '../ltx/index.js';

const enum Stage {
  Header,
  FrameHeader,
  BlockSize,
  Block,
  EndMark,
  PageHeader,
  Page,
  Trailer,
  Done,
}

const LZ4_FRAME_HEADER_SIZE = 7;
const FLG_CONTENT_CHECKSUM = 0x04;
const STORED_BIT = 0x80000000;

export class GoWriteSplitter implements ByteSink {
  private stage = Stage.Header;
  private cur: Buffer = Buffer.allocUnsafe(HEADER_SIZE);
  private fill = 0;
  private pageSize = 0;
  private contentChecksum = false;
  private ready: Buffer[] = [];

  write(chunk: Uint8Array): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.stage === Stage.Done) throw new Error('LTX stream continues after its trailer');
      const n = Math.min(this.cur.length - this.fill, chunk.length - off);
      this.cur.set(chunk.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      if (this.fill === this.cur.length) this.complete();
    }
  }

  /** The finished writes so far, in order (each handed out once). */
  take(): Buffer[] {
    const out = this.ready;
    this.ready = [];
    return out;
  }

  get done(): boolean {
    return this.stage === Stage.Done;
  }

  private complete(): void {
    const piece = this.cur;
    switch (this.stage) {
      case Stage.Header: {
        this.pageSize = piece.readUInt32BE(8);
        const compressed = (piece.readUInt32BE(4) & HeaderFlagCompressLZ4) !== 0;
        this.emit(compressed ? Stage.FrameHeader : Stage.PageHeader, compressed ? LZ4_FRAME_HEADER_SIZE : PAGE_HEADER_SIZE);
        return;
      }
      case Stage.FrameHeader:
        this.contentChecksum = (piece[4]! & FLG_CONTENT_CHECKSUM) !== 0;
        this.emit(Stage.BlockSize, 4);
        return;
      case Stage.BlockSize: {
        const size = piece.readUInt32LE(0);
        if (size === 0) {
          // The end mark and the content checksum are one write in Go.
          if (this.contentChecksum) return this.extend(Stage.EndMark, 8);
          this.emit(Stage.Trailer, TRAILER_SIZE);
          return;
        }
        this.emit(Stage.Block, (size & ~STORED_BIT) >>> 0);
        return;
      }
      case Stage.Block:
        this.emit(Stage.BlockSize, 4);
        return;
      case Stage.EndMark:
        this.emit(Stage.Trailer, TRAILER_SIZE);
        return;
      case Stage.PageHeader:
        // Page number 0 ends the page block.
        if (piece.readUInt32BE(0) === 0) this.emit(Stage.Trailer, TRAILER_SIZE);
        else this.emit(Stage.Page, this.pageSize);
        return;
      case Stage.Page:
        this.emit(Stage.PageHeader, PAGE_HEADER_SIZE);
        return;
      case Stage.Trailer:
        this.emit(Stage.Done, 0);
        return;
      case Stage.Done:
        return;
    }
  }

  /** Hands out the finished piece and starts the next one. */
  private emit(next: Stage, size: number): void {
    this.ready.push(this.cur);
    this.stage = next;
    this.cur = Buffer.allocUnsafe(size);
    this.fill = 0;
  }

  /** Keeps the bytes so far and grows the piece to `size` bytes. */
  private extend(next: Stage, size: number): void {
    const grown = Buffer.allocUnsafe(size);
    this.cur.copy(grown, 0, 0, this.fill);
    this.cur = grown;
    this.stage = next;
  }
}
