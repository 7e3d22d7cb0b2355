/**
 * The 100-byte LTX header (formats.md A.2): layout, marshal/unmarshal and the
 * 15 validation rules of ltx v0.3.13, in Go's order with Go's messages.
 */
import { LTXDecodeError, LTXValidationError } from './errors.js';
import type { Pos } from './pos.js';
import type { Checksum, TXID } from './types.js';

export const HEADER_SIZE = 100;
export const PAGE_HEADER_SIZE = 4;
export const TRAILER_SIZE = 16;

/** Flag bit 0: the page block is one LZ4 frame. The only defined flag. */
export const HeaderFlagCompressLZ4 = 0x1;
const HEADER_FLAG_MASK = HeaderFlagCompressLZ4;

/** ASCII "LTX1". The version is implied by the magic, not stored. */
const MAGIC = [0x4c, 0x54, 0x58, 0x31];

/** Every 64-bit field is a bigint so any on-disk value round-trips exactly. */
export interface Header {
  /** Always 1 for v0.3.x files; set by `unmarshalHeader`, checked by `validateHeader`. */
  version: number;
  flags: number;
  pageSize: number;
  /** Database size in pages after applying; 0 means the database is deleted. */
  commit: number;
  minTXID: TXID;
  maxTXID: TXID;
  /** Milliseconds since the Unix epoch (i64). */
  timestamp: bigint;
  preApplyChecksum: Checksum;
  /** i64 */
  walOffset: bigint;
  /** i64 */
  walSize: bigint;
  walSalt1: number;
  walSalt2: number;
  nodeID: bigint;
}

/** A header with version 1 and every other field zero, overridden by `fields`. */
export function makeHeader(fields: Partial<Header> = {}): Header {
  return {
    version: 1,
    flags: 0,
    pageSize: 0,
    commit: 0,
    minTXID: 0n,
    maxTXID: 0n,
    timestamp: 0n,
    preApplyChecksum: 0n,
    walOffset: 0n,
    walSize: 0n,
    walSalt1: 0,
    walSalt2: 0,
    nodeID: 0n,
    ...fields,
  };
}

/** Writes `h` as 100 bytes into `out` at `offset` (reserved bytes zeroed). */
export function marshalHeader(h: Header, out: Uint8Array = new Uint8Array(HEADER_SIZE), offset = 0): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset + offset, HEADER_SIZE);
  out.fill(0, offset, offset + HEADER_SIZE);
  for (let i = 0; i < 4; i++) out[offset + i] = MAGIC[i];
  v.setUint32(4, h.flags >>> 0);
  v.setUint32(8, h.pageSize >>> 0);
  v.setUint32(12, h.commit >>> 0);
  v.setBigUint64(16, BigInt.asUintN(64, h.minTXID));
  v.setBigUint64(24, BigInt.asUintN(64, h.maxTXID));
  v.setBigInt64(32, BigInt.asIntN(64, h.timestamp));
  v.setBigUint64(40, BigInt.asUintN(64, h.preApplyChecksum));
  v.setBigInt64(48, BigInt.asIntN(64, h.walOffset));
  v.setBigInt64(56, BigInt.asIntN(64, h.walSize));
  v.setUint32(64, h.walSalt1 >>> 0);
  v.setUint32(68, h.walSalt2 >>> 0);
  v.setBigUint64(72, BigInt.asUintN(64, h.nodeID));
  return out;
}

/**
 * Decodes 100 header bytes without validating them (Go's UnmarshalBinary /
 * PeekHeader). Reserved bytes are ignored, as in Go.
 */
export function unmarshalHeader(buf: Uint8Array): Header {
  if (buf.length < HEADER_SIZE) throw new LTXDecodeError('short-buffer', 'short buffer');
  const v = new DataView(buf.buffer, buf.byteOffset, HEADER_SIZE);
  for (let i = 0; i < 4; i++) {
    if (buf[i] !== MAGIC[i]) throw new LTXDecodeError('invalid-file', 'invalid LTX file');
  }
  return {
    version: 1,
    flags: v.getUint32(4),
    pageSize: v.getUint32(8),
    commit: v.getUint32(12),
    minTXID: v.getBigUint64(16),
    maxTXID: v.getBigUint64(24),
    timestamp: v.getBigInt64(32),
    preApplyChecksum: v.getBigUint64(40),
    walOffset: v.getBigInt64(48),
    walSize: v.getBigInt64(56),
    walSalt1: v.getUint32(64),
    walSalt2: v.getUint32(68),
    nodeID: v.getBigUint64(72),
  };
}

/** 512, 1024, ..., 65536. */
export function isValidPageSize(n: number): boolean {
  return n >= 512 && n <= 65536 && (n & (n - 1)) === 0;
}

/** A snapshot holds the whole database: MinTXID = 1. */
export function isSnapshot(h: Header): boolean {
  return h.minTXID === 1n;
}

function fail(rule: string, message: string): never {
  throw new LTXValidationError(rule, message);
}

const FLAG = 1n << 63n;

/** Header.Validate of ltx v0.3.13: 15 checks, the first failure wins. */
export function validateHeader(h: Header): void {
  if (h.version !== 1) fail('invalid-version', 'invalid version');
  if ((h.flags & ~HEADER_FLAG_MASK) !== 0) {
    fail('invalid-flags', `invalid flags: 0x${(h.flags >>> 0).toString(16).padStart(8, '0')}`);
  }
  if (!isValidPageSize(h.pageSize)) fail('invalid-page-size', `invalid page size: ${h.pageSize}`);
  if (h.minTXID === 0n) fail('min-txid-required', 'minimum transaction id required');
  if (h.maxTXID === 0n) fail('max-txid-required', 'maximum transaction id required');
  if (h.minTXID > h.maxTXID) fail('txids-out-of-order', `transaction ids out of order: (${h.minTXID},${h.maxTXID})`);
  if (h.walOffset < 0n) fail('negative-wal-offset', `wal offset cannot be negative: ${h.walOffset}`);
  if (h.walSize < 0n) fail('negative-wal-size', `wal size cannot be negative: ${h.walSize}`);
  const hasSalt = h.walSalt1 !== 0 || h.walSalt2 !== 0;
  if (hasSalt && h.walOffset === 0n) fail('wal-offset-required-for-salt', 'wal offset required if salt exists');
  if (hasSalt && h.walSize === 0n) fail('wal-size-required-for-salt', 'wal size required if salt exists');
  if (h.walOffset !== 0n && h.walSize === 0n) fail('wal-size-required-for-offset', 'wal size required if wal offset exists');
  if (h.walOffset === 0n && h.walSize !== 0n) fail('wal-offset-required-for-size', 'wal offset required if wal size exists');
  if (isSnapshot(h)) {
    if (h.preApplyChecksum !== 0n) fail('snapshot-pre-apply-checksum', 'pre-apply checksum must be zero on snapshots');
  } else {
    if (h.preApplyChecksum === 0n) fail('pre-apply-checksum-required', 'pre-apply checksum required on non-snapshot files');
    if ((h.preApplyChecksum & FLAG) === 0n) fail('invalid-pre-apply-checksum-format', 'invalid pre-apply checksum format');
  }
}

/** Position the database must be at before applying: (MinTXID-1, PreApplyChecksum). */
export function preApplyPos(h: Header): Pos {
  return { txid: h.minTXID - 1n, postApplyChecksum: h.preApplyChecksum };
}
