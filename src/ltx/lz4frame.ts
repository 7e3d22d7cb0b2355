/**
 * The LZ4 *frame* container (formats.md A.4), written over lz4js's block
 * compressor and our checked block decoder.
 *
 * Encoder: magic, FLG 0x64 (version 1, independent blocks, content checksum),
 * BD 0x40 (64 KiB blocks), HC 0xA7; the logical stream is cut into 64 KiB
 * blocks at fixed offsets, each compressed on its own and stored raw (bit 31)
 * when compression does not shrink it; end mark; xxh32 content checksum. This
 * is the layout pierrec/lz4 v4.1.17 writes for ltx.
 *
 * Decoder: push bytes in, read decoded bytes out. It accepts every conformant
 * single frame (stored blocks, block checksums, no content checksum, block
 * sizes 64 KiB..4 MiB, linked blocks) and stops exactly at the frame's end, so
 * the caller can read what follows (the LTX trailer) from the same stream.
 * Memory is bounded by the frame's declared maximum block size (<= 4 MiB):
 * one input block, one output block, and for linked blocks a 64 KiB window.
 */
import { compressBlock } from 'lz4js';
import { Xxh32, xxh32 } from '@node-rs/xxhash';
import { LZ4FrameError } from './errors.js';
import { decodeBlock } from './lz4block.js';
import type { ByteSink } from './sink.js';

export const LZ4_FRAME_MAGIC = 0x184d2204;

const FLG_VERSION_MASK = 0xc0;
const FLG_VERSION_1 = 0x40;
const FLG_BLOCK_INDEPENDENT = 0x20;
const FLG_BLOCK_CHECKSUM = 0x10;
const FLG_CONTENT_SIZE = 0x08;
const FLG_CONTENT_CHECKSUM = 0x04;
const FLG_DICT_ID = 0x01;
const STORED_BIT = 0x80000000;
const BLOCK_64K = 64 * 1024;
/** Longest back-reference an LZ4 match can make, hence the linked-block window. */
const WINDOW = 64 * 1024;

/** Maximum block size for BD block-size index 4..7; others are invalid. */
function maxBlockSize(bd: number): number {
  const index = (bd >>> 4) & 0x7;
  return index >= 4 ? 1 << (8 + 2 * index) : 0;
}

/**
 * Block buffers of finished frames, by size, for the next decoder on this
 * thread: a replica decodes every received LTX file (one frame each) and
 * allocating 64 KiB to 8 MiB per file made the garbage collector run a
 * full collection every second or so, pausing the thread each time. The
 * contents are never read before being written.
 */
const spareBlockBuffers = new Map<number, Uint8Array[]>();
const SPARES_PER_SIZE = 2;

function takeBlockBuffer(size: number): Uint8Array {
  return spareBlockBuffers.get(size)?.pop() ?? new Uint8Array(size);
}

function giveBackBlockBuffer(buf: Uint8Array): void {
  let spares = spareBlockBuffers.get(buf.length);
  if (spares === undefined) spareBlockBuffers.set(buf.length, (spares = []));
  if (spares.length < SPARES_PER_SIZE) spares.push(buf);
}

/** The header checksum byte: second byte of xxh32 over the descriptor. */
function headerChecksum(descriptor: Uint8Array): number {
  return (xxh32(descriptor, 0) >>> 8) & 0xff;
}

const ENCODER_FLG = FLG_VERSION_1 | FLG_BLOCK_INDEPENDENT | FLG_CONTENT_CHECKSUM;
const ENCODER_BD = 0x40;
const ENCODER_FRAME_HEADER = Uint8Array.of(0x04, 0x22, 0x4d, 0x18, ENCODER_FLG, ENCODER_BD, 0);
ENCODER_FRAME_HEADER[6] = headerChecksum(ENCODER_FRAME_HEADER.subarray(4, 6));

/** An encoder's working buffers (~400 KiB): allocating and zeroing them per LTX file cost more than compressing a small one. */
interface EncoderScratch {
  readonly block: Uint8Array;
  /** Frame header (first block only) + size word + one block, written as one chunk. */
  readonly out: Uint8Array;
  readonly hashTable: Uint32Array;
}

/** Buffers of closed encoders, reused by the next ones (a sink consumes each chunk before write returns). */
const scratchPool: EncoderScratch[] = [];
const SCRATCH_POOL_MAX = 4;

/** Streaming LZ4 frame writer with pierrec's block layout. */
export class LZ4FrameEncoder {
  private readonly block: Uint8Array;
  private fill = 0;
  private readonly out: Uint8Array;
  private readonly hashTable: Uint32Array;
  private readonly content = new Xxh32(0);
  private started = false;
  private closed = false;

  constructor(private readonly sink: ByteSink) {
    const scratch = scratchPool.pop() ?? {
      block: new Uint8Array(BLOCK_64K),
      out: new Uint8Array(ENCODER_FRAME_HEADER.length + 4 + BLOCK_64K),
      hashTable: new Uint32Array(1 << 16),
    };
    this.block = scratch.block;
    this.out = scratch.out;
    this.hashTable = scratch.hashTable;
  }

  write(data: Uint8Array, offset = 0, length: number = data.length - offset): void {
    if (this.closed) throw new LZ4FrameError('lz4-writer-closed', 'lz4: writer closed');
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      const n = Math.min(BLOCK_64K - this.fill, end - pos);
      this.block.set(data.subarray(pos, pos + n), this.fill);
      this.fill += n;
      pos += n;
      if (this.fill === BLOCK_64K) this.flushBlock();
    }
  }

  /** Flushes the last partial block, then the end mark and content checksum. */
  close(): void {
    if (this.closed) return;
    if (this.fill > 0) this.flushBlock();
    let p = this.startChunk();
    const v = new DataView(this.out.buffer);
    v.setUint32(p, 0, true);
    v.setUint32(p + 4, this.content.digest() >>> 0, true);
    p += 8;
    this.sink.write(this.out.subarray(0, p));
    this.closed = true;
    if (scratchPool.length < SCRATCH_POOL_MAX) scratchPool.push({ block: this.block, out: this.out, hashTable: this.hashTable });
  }

  /** Puts the frame header at the start of `out` once; returns where the next bytes go. */
  private startChunk(): number {
    if (this.started) return 0;
    this.started = true;
    this.out.set(ENCODER_FRAME_HEADER, 0);
    return ENCODER_FRAME_HEADER.length;
  }

  private flushBlock(): void {
    const src = this.block.subarray(0, this.fill);
    this.content.update(src);
    const p = this.startChunk();
    // Each block is compressed on its own (independent blocks): a fresh hash
    // table also makes the output independent of earlier blocks.
    this.hashTable.fill(0);
    // Compress into a window exactly as large as the input, as pierrec does:
    // output that would not fit (or no match at all, 0) means "store raw".
    const dst = this.out.subarray(p + 4, p + 4 + this.fill);
    const n = compressBlock(src, dst, 0, this.fill, this.hashTable);
    const v = new DataView(this.out.buffer);
    let size: number;
    if (n > 0 && n < this.fill) {
      size = n;
      v.setUint32(p, n, true);
    } else {
      size = this.fill;
      v.setUint32(p, (this.fill | STORED_BIT) >>> 0, true);
      this.out.set(src, p + 4);
    }
    this.sink.write(this.out.subarray(0, p + 4 + size));
    this.fill = 0;
  }
}

const enum Stage {
  Magic,
  Descriptor,
  BlockSize,
  BlockData,
  BlockChecksum,
  ContentChecksum,
  Done,
}

/**
 * Streaming LZ4 frame reader. `push` consumes input until a decoded block is
 * ready (then `pending` > 0 and `output()` returns it), the frame ends, or
 * the input runs out. It consumes no more input while decoded bytes are
 * pending, so a caller can stop in the middle of a block.
 */
export class LZ4FrameDecoder {
  private stage = Stage.Magic;
  /** Frame header bytes: magic, FLG, BD, optional size and dict id, HC (<= 19). */
  private readonly small = new Uint8Array(19);
  private smallFill = 0;
  private smallNeed = 4;
  private flg = 0;
  private blockMax = 0;
  private blockLen = 0;
  private blockStored = false;
  /** Input block being assembled when it arrives in pieces (allocated once, blockMax). */
  private inBuf: Uint8Array | null = null;
  private inFill = 0;
  /** Block data available in full, either in inBuf or in the caller's chunk. */
  private blockSrc: Uint8Array | null = null;
  private blockSrcPos = 0;
  /** Decoded output: a window [histLen - WINDOW.., histLen + blockMax). */
  private win: Uint8Array | null = null;
  private histLen = 0;
  private out: Uint8Array = new Uint8Array(0);
  private outPos = 0;
  private outEnd = 0;
  private readonly content = new Xxh32(0);
  /** Bytes decoded so far (the logical length). */
  decodedBytes = 0;

  get done(): boolean {
    return this.stage === Stage.Done;
  }

  /** Decoded bytes not yet taken with `consume`. */
  get pending(): number {
    return this.outEnd - this.outPos;
  }

  /** The buffer holding pending bytes, from `outputOffset` for `pending` bytes. */
  get outputBuffer(): Uint8Array {
    return this.out;
  }

  get outputOffset(): number {
    return this.outPos;
  }

  /** Marks `n` pending bytes as taken. */
  consume(n: number): void {
    this.outPos += n;
  }

  /** Consumes from src[off, off+len); returns how many bytes were used. */
  push(src: Uint8Array, off: number, len: number): number {
    const start = off;
    const end = off + len;
    while (off < end && this.pending === 0 && this.stage !== Stage.Done) {
      switch (this.stage) {
        case Stage.Magic:
        case Stage.Descriptor:
        case Stage.BlockSize:
        case Stage.BlockChecksum:
        case Stage.ContentChecksum: {
          const n = Math.min(this.smallNeed - this.smallFill, end - off);
          this.small.set(src.subarray(off, off + n), this.smallFill);
          this.smallFill += n;
          off += n;
          if (this.smallFill === this.smallNeed) this.onSmallComplete();
          break;
        }
        case Stage.BlockData: {
          if (this.inFill === 0 && end - off >= this.blockLen) {
            // Whole block in the caller's chunk: decode from it without copying.
            this.blockSrc = src;
            this.blockSrcPos = off;
            off += this.blockLen;
            this.onBlockData();
          } else {
            const buf = this.inBuf ?? (this.inBuf = takeBlockBuffer(this.blockMax));
            const n = Math.min(this.blockLen - this.inFill, end - off);
            buf.set(src.subarray(off, off + n), this.inFill);
            this.inFill += n;
            off += n;
            if (this.inFill === this.blockLen) {
              this.blockSrc = buf;
              this.blockSrcPos = 0;
              this.onBlockData();
            }
          }
          break;
        }
      }
    }
    return off - start;
  }

  private expectSmall(stage: Stage, need: number): void {
    this.stage = stage;
    this.smallFill = 0;
    this.smallNeed = need;
  }

  private u32le(at: number): number {
    const s = this.small;
    return (s[at] | (s[at + 1] << 8) | (s[at + 2] << 16) | (s[at + 3] << 24)) >>> 0;
  }

  private onSmallComplete(): void {
    switch (this.stage) {
      case Stage.Magic:
        if (this.u32le(0) !== LZ4_FRAME_MAGIC) throw new LZ4FrameError('lz4-invalid-magic', 'lz4: bad magic number');
        this.stage = Stage.Descriptor;
        this.smallNeed = 6;
        return;
      case Stage.Descriptor: {
        if (this.smallNeed === 6) {
          // FLG and BD known: now we know how long the descriptor is.
          this.flg = this.small[4];
          if ((this.flg & FLG_VERSION_MASK) !== FLG_VERSION_1) {
            throw new LZ4FrameError('lz4-unsupported-version', 'lz4: unsupported frame version');
          }
          this.blockMax = maxBlockSize(this.small[5]);
          if (this.blockMax === 0) throw new LZ4FrameError('lz4-invalid-block-size', 'lz4: invalid block max size');
          this.smallNeed = 6 + (this.flg & FLG_CONTENT_SIZE ? 8 : 0) + (this.flg & FLG_DICT_ID ? 4 : 0) + 1;
          return;
        }
        const hc = this.small[this.smallNeed - 1];
        if (headerChecksum(this.small.subarray(4, this.smallNeed - 1)) !== hc) {
          throw new LZ4FrameError('lz4-header-checksum-mismatch', 'lz4: invalid header checksum');
        }
        if ((this.flg & FLG_BLOCK_INDEPENDENT) === 0) this.win = new Uint8Array(WINDOW + this.blockMax);
        this.expectSmall(Stage.BlockSize, 4);
        return;
      }
      case Stage.BlockSize: {
        const word = this.u32le(0);
        if (word === 0) {
          if (this.flg & FLG_CONTENT_CHECKSUM) this.expectSmall(Stage.ContentChecksum, 4);
          else this.finish();
          return;
        }
        this.blockStored = (word & STORED_BIT) !== 0;
        this.blockLen = word & ~STORED_BIT;
        if (this.blockLen > this.blockMax) {
          throw new LZ4FrameError('lz4-block-too-large', `lz4: block size ${this.blockLen} exceeds maximum ${this.blockMax}`);
        }
        this.stage = Stage.BlockData;
        this.inFill = 0;
        if (this.blockLen === 0) {
          // An empty stored block: nothing to decode, but its checksum may follow.
          this.blockSrc = this.small;
          this.blockSrcPos = 0;
          this.onBlockData();
        }
        return;
      }
      case Stage.BlockChecksum: {
        const src = this.blockSrc ?? this.small;
        const sum = xxh32(src.subarray(this.blockSrcPos, this.blockSrcPos + this.blockLen), 0) >>> 0;
        if (sum !== this.u32le(0)) throw new LZ4FrameError('lz4-block-checksum-mismatch', 'lz4: invalid block checksum');
        this.decodeCurrentBlock();
        return;
      }
      case Stage.ContentChecksum:
        if ((this.content.digest() >>> 0) !== this.u32le(0)) {
          throw new LZ4FrameError('lz4-content-checksum-mismatch', 'lz4: invalid frame checksum');
        }
        this.finish();
        return;
      default:
        return;
    }
  }

  /** The block's stored bytes are all present (blockSrc at blockSrcPos). */
  private onBlockData(): void {
    if (this.flg & FLG_BLOCK_CHECKSUM) {
      // The block checksum may arrive in a later push; if the block lives in
      // the caller's chunk, keep a copy so it survives until then.
      if (this.blockSrc !== this.inBuf && this.blockLen > 0) {
        const buf = this.inBuf ?? (this.inBuf = takeBlockBuffer(this.blockMax));
        const src = this.blockSrc as Uint8Array;
        buf.set(src.subarray(this.blockSrcPos, this.blockSrcPos + this.blockLen), 0);
        this.blockSrc = buf;
        this.blockSrcPos = 0;
      }
      this.expectSmall(Stage.BlockChecksum, 4);
      return;
    }
    this.decodeCurrentBlock();
  }

  private decodeCurrentBlock(): void {
    const src = this.blockSrc as Uint8Array;
    const sPos = this.blockSrcPos;
    const len = this.blockLen;
    this.blockSrc = null;
    this.expectSmall(Stage.BlockSize, 4);
    if (this.win !== null) {
      this.decodeLinked(src, sPos, len);
    } else if (this.blockStored) {
      this.setOutput(src, sPos, sPos + len);
    } else {
      const buf = this.inBuf === src ? this.scratchOut() : (this.inBuf ?? (this.inBuf = takeBlockBuffer(this.blockMax)));
      const n = decodeBlock(src, sPos, sPos + len, buf, 0, this.blockMax, 0);
      if (n < 0) throw new LZ4FrameError('lz4-corrupt-block', 'lz4: invalid source or destination buffer too short');
      this.setOutput(buf, 0, n);
    }
  }

  private outScratch: Uint8Array | null = null;

  /** The frame is over (nothing decoded is pending): its block buffers go back for the next frame. */
  private finish(): void {
    this.stage = Stage.Done;
    if (this.inBuf !== null) giveBackBlockBuffer(this.inBuf);
    if (this.outScratch !== null) giveBackBlockBuffer(this.outScratch);
    this.inBuf = null;
    this.outScratch = null;
    this.blockSrc = null;
  }

  private scratchOut(): Uint8Array {
    return this.outScratch ?? (this.outScratch = takeBlockBuffer(this.blockMax));
  }

  /** Linked blocks: decode after the last 64 KiB of output so matches can reach back into it. */
  private decodeLinked(src: Uint8Array, sPos: number, len: number): void {
    const win = this.win as Uint8Array;
    if (this.histLen > WINDOW) {
      win.copyWithin(0, this.histLen - WINDOW, this.histLen);
      this.histLen = WINDOW;
    }
    let n: number;
    if (this.blockStored) {
      win.set(src.subarray(sPos, sPos + len), this.histLen);
      n = this.histLen + len;
    } else {
      n = decodeBlock(src, sPos, sPos + len, win, this.histLen, this.histLen + this.blockMax, 0);
      if (n < 0) throw new LZ4FrameError('lz4-corrupt-block', 'lz4: invalid source or destination buffer too short');
    }
    this.setOutput(win, this.histLen, n);
    this.histLen = n;
  }

  private setOutput(buf: Uint8Array, from: number, to: number): void {
    this.out = buf;
    this.outPos = from;
    this.outEnd = to;
    if (to > from && this.flg & FLG_CONTENT_CHECKSUM) this.content.update(buf.subarray(from, to));
    this.decodedBytes += to - from;
  }
}
