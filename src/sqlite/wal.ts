import { ShortBufferError, WalHeaderError } from './errors.js';
import { isValidPageSize } from './header.js';
import { walChecksum, type WalChecksum } from './wal-checksum.js';

export const WAL_HEADER_SIZE = 32;
export const WAL_FRAME_HEADER_SIZE = 24;
/** Magic whose checksum words are little-endian (what little-endian hosts write). */
export const WAL_MAGIC_LE = 0x377f0682;
/** Magic whose checksum words are big-endian. */
export const WAL_MAGIC_BE = 0x377f0683;
export const WAL_FORMAT_VERSION = 3007000;

export interface WalHeader {
  /** True for magic 0x377f0683: checksum words are read big-endian. */
  bigEndianChecksum: boolean;
  version: number;
  /** Actual page size (65536 is stored as 0x00010000 here, unlike the database header). */
  pageSize: number;
  checkpointSeq: number;
  salt1: number;
  salt2: number;
  /** Stored checksum over bytes 0..23; seeds frame 1. */
  checksum: WalChecksum;
}

export interface WalFrameHeader {
  pgno: number;
  /** Database size in pages after this frame if it commits a transaction, else 0. */
  commit: number;
  salt1: number;
  salt2: number;
  checksum: WalChecksum;
}

export function walFrameSize(pageSize: number): number {
  return WAL_FRAME_HEADER_SIZE + pageSize;
}

/** File offset of 1-based frame `index`. */
export function walFrameOffset(index: number, pageSize: number): number {
  return WAL_HEADER_SIZE + (index - 1) * walFrameSize(pageSize);
}

/**
 * Parses and validates a 32-byte WAL header: magic, version, page size and
 * header checksum. Throws WalHeaderError naming the failed check.
 */
export function parseWalHeader(buf: Uint8Array): WalHeader {
  if (buf.length < WAL_HEADER_SIZE) {
    throw new WalHeaderError('short', `need ${WAL_HEADER_SIZE} bytes, got ${buf.length}`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, WAL_HEADER_SIZE);
  const magic = view.getUint32(0, false);
  if (magic !== WAL_MAGIC_LE && magic !== WAL_MAGIC_BE) {
    throw new WalHeaderError('magic', `bad magic ${magic.toString(16)}`);
  }
  const bigEndianChecksum = magic === WAL_MAGIC_BE;
  const version = view.getUint32(4, false);
  if (version !== WAL_FORMAT_VERSION) throw new WalHeaderError('version', `unsupported version ${version}`);
  const pageSize = view.getUint32(8, false);
  if (!isValidPageSize(pageSize)) throw new WalHeaderError('page-size', `invalid page size ${pageSize}`);
  const checksum: WalChecksum = [view.getUint32(24, false), view.getUint32(28, false)];
  const computed = walChecksum(buf.subarray(0, 24), bigEndianChecksum);
  if (computed[0] !== checksum[0] || computed[1] !== checksum[1]) {
    throw new WalHeaderError('checksum', 'header checksum mismatch');
  }
  return {
    bigEndianChecksum,
    version,
    pageSize,
    checkpointSeq: view.getUint32(12, false),
    salt1: view.getUint32(16, false),
    salt2: view.getUint32(20, false),
    checksum,
  };
}

export interface WalHeaderFields {
  bigEndianChecksum: boolean;
  pageSize: number;
  checkpointSeq: number;
  salt1: number;
  salt2: number;
}

/** Encodes a WAL header with its checksum; `header.checksum` of the result seeds frame 1. */
export function buildWalHeader(fields: WalHeaderFields): { bytes: Buffer; header: WalHeader } {
  if (!isValidPageSize(fields.pageSize)) throw new RangeError(`invalid WAL page size ${fields.pageSize}`);
  const bytes = Buffer.alloc(WAL_HEADER_SIZE);
  bytes.writeUInt32BE(fields.bigEndianChecksum ? WAL_MAGIC_BE : WAL_MAGIC_LE, 0);
  bytes.writeUInt32BE(WAL_FORMAT_VERSION, 4);
  bytes.writeUInt32BE(fields.pageSize, 8);
  bytes.writeUInt32BE(fields.checkpointSeq >>> 0, 12);
  bytes.writeUInt32BE(fields.salt1 >>> 0, 16);
  bytes.writeUInt32BE(fields.salt2 >>> 0, 20);
  const checksum = walChecksum(bytes.subarray(0, 24), fields.bigEndianChecksum);
  bytes.writeUInt32BE(checksum[0], 24);
  bytes.writeUInt32BE(checksum[1], 28);
  return {
    bytes,
    header: { ...fields, salt1: fields.salt1 >>> 0, salt2: fields.salt2 >>> 0, version: WAL_FORMAT_VERSION, checksum },
  };
}

/** Parses a 24-byte frame header without validating it (see WalReader for that). */
export function parseWalFrameHeader(buf: Uint8Array): WalFrameHeader {
  if (buf.length < WAL_FRAME_HEADER_SIZE) throw new ShortBufferError('wal frame header', WAL_FRAME_HEADER_SIZE, buf.length);
  const view = new DataView(buf.buffer, buf.byteOffset, WAL_FRAME_HEADER_SIZE);
  return {
    pgno: view.getUint32(0, false),
    commit: view.getUint32(4, false),
    salt1: view.getUint32(8, false),
    salt2: view.getUint32(12, false),
    checksum: [view.getUint32(16, false), view.getUint32(20, false)],
  };
}

/**
 * The checksum a frame must carry: the running checksum continued over frame
 * header bytes 0..7 (pgno, commit) and then the page data.
 */
export function walFrameChecksum(
  frameHeader: Uint8Array,
  data: Uint8Array,
  bigEndian: boolean,
  previous: WalChecksum,
): WalChecksum {
  return walChecksum(data, bigEndian, walChecksum(frameHeader.subarray(0, 8), bigEndian, previous));
}

export interface WalFrameContext {
  bigEndianChecksum: boolean;
  salt1: number;
  salt2: number;
}

/**
 * Encodes one frame (header + page) continuing running checksum `previous`.
 * Returns the bytes and the new running checksum to pass to the next frame.
 * Writes into `out` (24 + page bytes) when given, to avoid an allocation.
 */
export function encodeWalFrame(
  ctx: WalFrameContext,
  previous: WalChecksum,
  pgno: number,
  commit: number,
  data: Uint8Array,
  out?: Buffer,
): { bytes: Buffer; checksum: WalChecksum } {
  if (pgno < 1 || !Number.isInteger(pgno)) throw new RangeError(`invalid pgno ${pgno}`);
  const size = WAL_FRAME_HEADER_SIZE + data.length;
  const bytes = out ?? Buffer.alloc(size);
  if (bytes.length !== size) throw new RangeError(`frame buffer is ${bytes.length} bytes, need ${size}`);
  bytes.writeUInt32BE(pgno >>> 0, 0);
  bytes.writeUInt32BE(commit >>> 0, 4);
  bytes.writeUInt32BE(ctx.salt1 >>> 0, 8);
  bytes.writeUInt32BE(ctx.salt2 >>> 0, 12);
  bytes.set(data, WAL_FRAME_HEADER_SIZE);
  const checksum = walFrameChecksum(bytes, bytes.subarray(WAL_FRAME_HEADER_SIZE), ctx.bigEndianChecksum, previous);
  bytes.writeUInt32BE(checksum[0], 16);
  bytes.writeUInt32BE(checksum[1], 20);
  return { bytes, checksum };
}
