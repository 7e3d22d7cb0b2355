import { ShortBufferError } from './errors.js';
import { isValidPageSize } from './header.js';
import type { WalHeader } from './wal.js';
import { HOST_LITTLE_ENDIAN, walChecksum, type WalChecksum } from './wal-checksum.js';

/*
 * The wal-index header at the start of `<db>-shm`: two copies of WalIndexHdr
 * and WalCkptInfo, all in the host's byte order (SQLite shares the file by
 * mmap). Only aSalt is raw bytes copied from the WAL header, so its u32
 * values read big-endian like the WAL's.
 */

export const WAL_INDEX_HEADER_SIZE = 48;
export const CHECKPOINT_INFO_SIZE = 40;
/** Both header copies and the checkpoint info. */
export const SHM_HEADER_SIZE = 136;
export const WAL_INDEX_VERSION = 3007000;
export const READ_MARK_COUNT = 5;
/** aReadMark value of an unused mark. */
export const READ_MARK_UNUSED = 0xffffffff;

export interface WalIndexHeader {
  version: number;
  /** Incremented on every commit; readers compare headers to detect change. */
  change: number;
  isInit: number;
  bigEndianChecksum: boolean;
  /** Actual page size (stored as 1 for 65536). */
  pageSize: number;
  /** Last valid commit frame; 0 = nothing in the WAL. */
  mxFrame: number;
  nPage: number;
  /** Running WAL checksum after frame mxFrame. */
  frameChecksum: WalChecksum;
  /** The WAL header's salts, as big-endian u32 values. */
  salt1: number;
  salt2: number;
  /** Stored aCksum over bytes 0..39. */
  checksum: WalChecksum;
}

export type WalIndexHeaderFields = Omit<WalIndexHeader, 'checksum'>;

export interface CheckpointInfo {
  nBackfill: number;
  /** Five marks; [0] is always 0, READ_MARK_UNUSED means unused. */
  readMarks: readonly number[];
  nBackfillAttempted: number;
}

export interface ShmHeader {
  copy1: WalIndexHeader;
  copy2: WalIndexHeader;
  checkpoint: CheckpointInfo;
  /** The 48-byte copies are byte-identical. */
  copiesEqual: boolean;
  /** copy1's aCksum matches its bytes 0..39. */
  checksumValid: boolean;
  /** What SQLite requires before trusting the header (else it runs recovery). */
  valid: boolean;
}

function readU32(buf: Uint8Array, off: number): number {
  const view = new DataView(buf.buffer, buf.byteOffset + off, 4);
  return view.getUint32(0, HOST_LITTLE_ENDIAN);
}

function writeU32(buf: Buffer, value: number, off: number): void {
  if (HOST_LITTLE_ENDIAN) buf.writeUInt32LE(value >>> 0, off);
  else buf.writeUInt32BE(value >>> 0, off);
}

export function encodeShmPageSize(pageSize: number): number {
  return pageSize === 65536 ? 1 : pageSize;
}

export function decodeShmPageSize(stored: number): number {
  return stored === 1 ? 65536 : stored;
}

/** aCksum of a 48-byte header copy: the WAL checksum in host word order over bytes 0..39. */
export function walIndexHeaderChecksum(copy: Uint8Array): WalChecksum {
  return walChecksum(copy.subarray(0, 40), !HOST_LITTLE_ENDIAN);
}

/** Decodes one 48-byte WalIndexHdr copy. */
export function parseWalIndexHeader(copy: Uint8Array): WalIndexHeader {
  if (copy.length < WAL_INDEX_HEADER_SIZE) throw new ShortBufferError('wal-index header', WAL_INDEX_HEADER_SIZE, copy.length);
  const view = new DataView(copy.buffer, copy.byteOffset, WAL_INDEX_HEADER_SIZE);
  const le = HOST_LITTLE_ENDIAN;
  return {
    version: view.getUint32(0, le),
    change: view.getUint32(8, le),
    isInit: copy[12]!,
    bigEndianChecksum: copy[13] !== 0,
    pageSize: decodeShmPageSize(view.getUint16(14, le)),
    mxFrame: view.getUint32(16, le),
    nPage: view.getUint32(20, le),
    frameChecksum: [view.getUint32(24, le), view.getUint32(28, le)],
    salt1: view.getUint32(32, false),
    salt2: view.getUint32(36, false),
    checksum: [view.getUint32(40, le), view.getUint32(44, le)],
  };
}

export function parseCheckpointInfo(buf: Uint8Array): CheckpointInfo {
  if (buf.length < CHECKPOINT_INFO_SIZE) throw new ShortBufferError('wal-index checkpoint info', CHECKPOINT_INFO_SIZE, buf.length);
  const readMarks: number[] = [];
  for (let i = 0; i < READ_MARK_COUNT; i++) readMarks.push(readU32(buf, 4 + 4 * i));
  return { nBackfill: readU32(buf, 0), readMarks, nBackfillAttempted: readU32(buf, 32) };
}

/** Parses bytes 0..135 of a -shm file and checks them the way a SQLite reader does. */
export function parseShmHeader(buf: Uint8Array): ShmHeader {
  if (buf.length < SHM_HEADER_SIZE) throw new ShortBufferError('shm header', SHM_HEADER_SIZE, buf.length);
  const raw1 = buf.subarray(0, WAL_INDEX_HEADER_SIZE);
  const raw2 = buf.subarray(WAL_INDEX_HEADER_SIZE, 2 * WAL_INDEX_HEADER_SIZE);
  const copy1 = parseWalIndexHeader(raw1);
  const copy2 = parseWalIndexHeader(raw2);
  const copiesEqual = Buffer.from(raw1.buffer, raw1.byteOffset, raw1.length).equals(raw2);
  const computed = walIndexHeaderChecksum(raw1);
  const checksumValid = computed[0] === copy1.checksum[0] && computed[1] === copy1.checksum[1];
  return {
    copy1,
    copy2,
    checkpoint: parseCheckpointInfo(buf.subarray(2 * WAL_INDEX_HEADER_SIZE, SHM_HEADER_SIZE)),
    copiesEqual,
    checksumValid,
    valid: copiesEqual && checksumValid && copy1.isInit === 1,
  };
}

/** Encodes one 48-byte WalIndexHdr copy, computing aCksum. */
export function encodeWalIndexHeader(h: WalIndexHeaderFields): Buffer {
  if (!isValidPageSize(h.pageSize)) throw new RangeError(`invalid wal-index page size ${h.pageSize}`);
  const buf = Buffer.alloc(WAL_INDEX_HEADER_SIZE);
  writeU32(buf, h.version, 0);
  writeU32(buf, h.change, 8);
  buf[12] = h.isInit;
  buf[13] = h.bigEndianChecksum ? 1 : 0;
  if (HOST_LITTLE_ENDIAN) buf.writeUInt16LE(encodeShmPageSize(h.pageSize), 14);
  else buf.writeUInt16BE(encodeShmPageSize(h.pageSize), 14);
  writeU32(buf, h.mxFrame, 16);
  writeU32(buf, h.nPage, 20);
  writeU32(buf, h.frameChecksum[0], 24);
  writeU32(buf, h.frameChecksum[1], 28);
  // Raw copy of WAL header bytes 16..23, i.e. big-endian whatever the host.
  buf.writeUInt32BE(h.salt1 >>> 0, 32);
  buf.writeUInt32BE(h.salt2 >>> 0, 36);
  const checksum = walIndexHeaderChecksum(buf);
  writeU32(buf, checksum[0], 40);
  writeU32(buf, checksum[1], 44);
  return buf;
}

/** Encodes the 40-byte WalCkptInfo; the lock bytes and notUsed0 are zero. */
export function encodeCheckpointInfo(c: CheckpointInfo): Buffer {
  if (c.readMarks.length !== READ_MARK_COUNT) throw new RangeError(`need ${READ_MARK_COUNT} read marks`);
  const buf = Buffer.alloc(CHECKPOINT_INFO_SIZE);
  writeU32(buf, c.nBackfill, 0);
  for (let i = 0; i < READ_MARK_COUNT; i++) writeU32(buf, c.readMarks[i]!, 4 + 4 * i);
  writeU32(buf, c.nBackfillAttempted, 32);
  return buf;
}

/**
 * Writes both header copies and the checkpoint info into `target` (at least
 * 136 bytes). Copy 2 is written before copy 1, as SQLite's writer does, so a
 * reader racing on shared memory sees the copies differ and retries.
 */
export function writeShmHeader(target: Buffer, h: WalIndexHeaderFields, ckpt: CheckpointInfo): void {
  if (target.length < SHM_HEADER_SIZE) throw new ShortBufferError('shm header target', SHM_HEADER_SIZE, target.length);
  const copy = encodeWalIndexHeader(h);
  copy.copy(target, WAL_INDEX_HEADER_SIZE);
  copy.copy(target, 0);
  encodeCheckpointInfo(ckpt).copy(target, 2 * WAL_INDEX_HEADER_SIZE);
}

/** The 136 header bytes for `h` and `ckpt` (strategy 1 of formats.md B.8.1, or any state). */
export function buildShmHeader(h: WalIndexHeaderFields, ckpt: CheckpointInfo): Buffer {
  const buf = Buffer.alloc(SHM_HEADER_SIZE);
  writeShmHeader(buf, h, ckpt);
  return buf;
}

export interface EmptyWalShmState {
  /** The header currently in the file, if any: iChange and bigEndCksum carry over. */
  previous: WalIndexHeader | null;
  pageSize: number;
  nPage: number;
  /** The WAL's current running checksum. */
  frameChecksum: WalChecksum;
  salt1: number;
  salt2: number;
}

/**
 * Header for LiteFS's strategy (formats.md B.8.2): the data is in the
 * database file and the WAL is empty, so mxFrame = nBackfill = 0 sends every
 * reader to the database file, and iChange + 1 makes connections drop their
 * page caches. Salts are stored as SQLite does (raw WAL bytes), not
 * byte-swapped as LiteFS does; with mxFrame 0 either is harmless.
 */
export function buildEmptyWalShmHeader(state: EmptyWalShmState): Buffer {
  return buildShmHeader(
    {
      version: WAL_INDEX_VERSION,
      change: ((state.previous?.change ?? 0) + 1) >>> 0,
      isInit: 1,
      bigEndianChecksum: state.previous?.bigEndianChecksum ?? false,
      pageSize: state.pageSize,
      mxFrame: 0,
      nPage: state.nPage,
      frameChecksum: state.frameChecksum,
      salt1: state.salt1,
      salt2: state.salt2,
    },
    {
      nBackfill: 0,
      readMarks: [0, READ_MARK_UNUSED, READ_MARK_UNUSED, READ_MARK_UNUSED, READ_MARK_UNUSED],
      nBackfillAttempted: 0,
    },
  );
}

/** A transaction appended to the WAL by us (formats.md B.8.1 strategy 1). */
export interface AppendedCommit {
  /** The WAL's page size (an index recovered from an empty WAL stores 0). */
  pageSize: number;
  /** Index of the commit frame just written. */
  mxFrame: number;
  /** Its commit field: database size in pages. */
  nPage: number;
  /** Running checksum after the commit frame. */
  frameChecksum: WalChecksum;
  /**
   * Set when a new WAL header was written before the first frame (the WAL
   * was empty, or was restarted): its salts and byte order replace the index's.
   */
  newWalHeader?: Pick<WalHeader, 'salt1' | 'salt2' | 'bigEndianChecksum'>;
  /**
   * The new header was a restart (everything was backfilled): the
   * checkpoint info is reset as SQLite's walRestartHdr does.
   */
  restarted?: boolean;
}

/**
 * Header fields and checkpoint info after appending real frames: iChange + 1,
 * the new mxFrame, nPage, running checksum and page size; version and
 * isInit kept, salts and byte order from a new WAL header if one was written. Pass the result to writeShmHeader (after
 * the frames and their hash entries are in place).
 */
export function shmStateAfterCommit(
  previous: { header: WalIndexHeader; checkpoint: CheckpointInfo },
  commit: AppendedCommit,
): { header: WalIndexHeaderFields; checkpoint: CheckpointInfo } {
  const prev = previous.header;
  const header: WalIndexHeaderFields = {
    version: WAL_INDEX_VERSION,
    change: (prev.change + 1) >>> 0,
    isInit: 1,
    bigEndianChecksum: commit.newWalHeader?.bigEndianChecksum ?? prev.bigEndianChecksum,
    pageSize: commit.pageSize,
    mxFrame: commit.mxFrame,
    nPage: commit.nPage,
    frameChecksum: commit.frameChecksum,
    salt1: commit.newWalHeader?.salt1 ?? prev.salt1,
    salt2: commit.newWalHeader?.salt2 ?? prev.salt2,
  };
  const checkpoint: CheckpointInfo =
    commit.restarted === true
      ? {
          nBackfill: 0,
          readMarks: [0, 0, READ_MARK_UNUSED, READ_MARK_UNUSED, READ_MARK_UNUSED],
          nBackfillAttempted: 0,
        }
      : previous.checkpoint;
  return { header, checkpoint };
}
