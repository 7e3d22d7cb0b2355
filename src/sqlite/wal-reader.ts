import { WalHeaderError } from './errors.js';
import { readExactly, type PositionalReader } from './positional.js';
import {
  parseWalHeader,
  walFrameChecksum,
  walFrameSize,
  WAL_FRAME_HEADER_SIZE,
  WAL_HEADER_SIZE,
  type WalHeader,
} from './wal.js';
import type { WalChecksum } from './wal-checksum.js';

/** One valid frame. `data` is a view into the reader's buffer, valid until the next `next()`. */
export interface WalFrame {
  /** 1-based frame number. */
  index: number;
  /** File offset of the frame header. */
  offset: number;
  pgno: number;
  /** Database size in pages for a commit frame, else 0. */
  commit: number;
  /** Running checksum after this frame. */
  checksum: WalChecksum;
  data: Buffer;
}

/** Why iteration ended: the first frame that is not valid and everything after it is ignored. */
export type WalEndReason = 'eof' | 'salt-mismatch' | 'zero-pgno' | 'checksum-mismatch';

/** Reads a WAL header from the start of `src`; throws WalHeaderError if there is none or it is invalid. */
export function readWalHeader(src: PositionalReader): WalHeader {
  const buf = Buffer.alloc(WAL_HEADER_SIZE);
  if (!readExactly(src, buf, 0)) {
    throw new WalHeaderError('short', `file has ${src.size()} bytes, header needs ${WAL_HEADER_SIZE}`);
  }
  return parseWalHeader(buf);
}

/**
 * Iterates the valid frames of a WAL in order, the way SQLite's recovery and
 * LiteFS's WALReader do: it stops for good at the first frame that is short,
 * carries other salts, has pgno 0, or breaks the cumulative checksum.
 * Memory is one frame buffer (24 + page size, at most 65560 bytes) whatever
 * the file says.
 */
export class WalReader {
  private readonly frame: Buffer;
  private readonly frameSize: number;
  private nextOffset: number;
  private running: WalChecksum;
  private ended: WalEndReason | null = null;

  /**
   * Starts at `offset` (a frame boundary, default the first frame) with
   * running checksum `checksum` (default the header's), so a caller that
   * already processed a prefix of the WAL can continue after it.
   */
  constructor(
    private readonly src: PositionalReader,
    readonly header: WalHeader,
    offset: number = WAL_HEADER_SIZE,
    checksum: WalChecksum = header.checksum,
  ) {
    this.frameSize = walFrameSize(header.pageSize);
    if (offset < WAL_HEADER_SIZE || (offset - WAL_HEADER_SIZE) % this.frameSize !== 0) {
      throw new RangeError(`wal offset ${offset} is not a frame boundary for page size ${header.pageSize}`);
    }
    this.frame = Buffer.alloc(this.frameSize);
    this.nextOffset = offset;
    this.running = checksum;
  }

  /** Opens `src`, reading and validating its header (throws WalHeaderError). */
  static open(src: PositionalReader): WalReader {
    return new WalReader(src, readWalHeader(src));
  }

  /** Offset just after the last valid frame returned (where the next frame would start). */
  get offset(): number {
    return this.nextOffset;
  }

  /** Running checksum after the last valid frame returned. */
  get checksum(): WalChecksum {
    return this.running;
  }

  /** Why the log ended, once `next()` has returned null. */
  get endReason(): WalEndReason | null {
    return this.ended;
  }

  /** The next valid frame, or null at the end of the valid log. */
  next(): WalFrame | null {
    if (this.ended !== null) return null;
    const offset = this.nextOffset;
    if (!readExactly(this.src, this.frame, offset)) return this.end('eof');
    const f = this.frame;
    const pgno = f.readUInt32BE(0);
    const commit = f.readUInt32BE(4);
    if (f.readUInt32BE(8) !== this.header.salt1 || f.readUInt32BE(12) !== this.header.salt2) {
      return this.end('salt-mismatch');
    }
    if (pgno === 0) return this.end('zero-pgno');
    const data = f.subarray(WAL_FRAME_HEADER_SIZE);
    const checksum = walFrameChecksum(f, data, this.header.bigEndianChecksum, this.running);
    if (checksum[0] !== f.readUInt32BE(16) || checksum[1] !== f.readUInt32BE(20)) {
      return this.end('checksum-mismatch');
    }
    this.running = checksum;
    this.nextOffset = offset + this.frameSize;
    return {
      index: (offset - WAL_HEADER_SIZE) / this.frameSize + 1,
      offset,
      pgno,
      commit,
      checksum,
      data,
    };
  }

  private end(reason: WalEndReason): null {
    this.ended = reason;
    return null;
  }
}

/** State of the WAL as SQLite recovery would see it: the last valid commit. */
export interface WalScan {
  header: WalHeader;
  /** Index of the last valid commit frame; 0 if no transaction committed. */
  mxFrame: number;
  /** Database size in pages after that commit (0 if none). */
  nPage: number;
  /** Running checksum after frame mxFrame (the header's if mxFrame is 0). */
  checksum: WalChecksum;
  /** File offset just after frame mxFrame (32 if none). */
  endOffset: number;
  /** For every page in a committed frame: offset of the frame header of its last committed version. */
  frameOffsets: Map<number, number>;
  /** Valid frames after mxFrame: an unfinished transaction, ignored. */
  uncommittedFrames: number;
  endReason: WalEndReason;
}

/**
 * Scans a whole WAL and returns its last committed state (what LiteFS's
 * checkpoint copies into the database file). Throws WalHeaderError when the
 * header is missing or invalid; SQLite would treat that WAL as empty.
 */
export function scanWal(src: PositionalReader): WalScan {
  const reader = WalReader.open(src);
  const committed = new Map<number, number>();
  const pending = new Map<number, number>();
  let mxFrame = 0;
  let nPage = 0;
  let checksum = reader.header.checksum;
  let endOffset = WAL_HEADER_SIZE;
  let uncommitted = 0;
  for (let frame = reader.next(); frame !== null; frame = reader.next()) {
    pending.set(frame.pgno, frame.offset);
    uncommitted++;
    if (frame.commit !== 0) {
      for (const [pgno, off] of pending) committed.set(pgno, off);
      pending.clear();
      uncommitted = 0;
      mxFrame = frame.index;
      nPage = frame.commit;
      checksum = frame.checksum;
      endOffset = reader.offset;
    }
  }
  return {
    header: reader.header,
    mxFrame,
    nPage,
    checksum,
    endOffset,
    frameOffsets: committed,
    uncommittedFrames: uncommitted,
    endReason: reader.endReason ?? 'eof',
  };
}

/** One committed transaction read from a known position. */
export interface WalTransaction {
  /** pgno → offset of the frame header of the page's last version in this transaction. */
  frameOffsets: Map<number, number>;
  /** Database size in pages after the commit. */
  commit: number;
  /** Running checksum after the commit frame. */
  checksum: WalChecksum;
  /** Offset of the transaction's first frame. */
  startOffset: number;
  /** Offset just after the commit frame. */
  endOffset: number;
  frameCount: number;
  /**
   * pgno → a copy of the page's last version in this transaction, when the
   * caller's byte budget held them all; null when it did not (read them by
   * `frameOffsets` then).
   */
  pages: Map<number, Uint8Array> | null;
}

/**
 * Reads exactly one transaction starting at frame boundary `offset` with the
 * running checksum after the previous frame (LiteFS's buildTxFrameOffsets,
 * ref §6.4 step 3). Returns null when there is no complete committed
 * transaction there (end of file, salt or checksum mismatch before a commit
 * frame: e.g. the writer rolled back). Frames are read (and checksummed)
 * anyway, so a transaction of at most `keepPageBytes` bytes of frames also
 * hands back its pages, sparing the caller a second read of each.
 */
export function readWalTransaction(
  src: PositionalReader,
  header: WalHeader,
  offset: number,
  checksum: WalChecksum,
  keepPageBytes = 0,
): WalTransaction | null {
  const reader = new WalReader(src, header, offset, checksum);
  const frameOffsets = new Map<number, number>();
  let pages: Map<number, Uint8Array> | null = keepPageBytes > 0 ? new Map() : null;
  let frameCount = 0;
  for (let frame = reader.next(); frame !== null; frame = reader.next()) {
    frameOffsets.set(frame.pgno, frame.offset);
    frameCount++;
    if (pages !== null) {
      if (frameCount * header.pageSize > keepPageBytes) pages = null;
      else pages.set(frame.pgno, Uint8Array.prototype.slice.call(frame.data));
    }
    if (frame.commit !== 0) {
      return {
        frameOffsets,
        commit: frame.commit,
        checksum: frame.checksum,
        startOffset: offset,
        endOffset: reader.offset,
        frameCount,
        pages,
      };
    }
  }
  return null;
}
