import { BadMagicError, BadPageSizeError, ShortBufferError } from './errors.js';

/** Size of the database header at the start of page 1. */
export const DATABASE_HEADER_SIZE = 100;

/** "SQLite format 3\0" */
export const DATABASE_MAGIC: Buffer = Buffer.from('SQLite format 3\0', 'latin1');

export const MIN_PAGE_SIZE = 512;
export const MAX_PAGE_SIZE = 65536;

/**
 * File offset of SQLite's PENDING lock byte (1 GiB). The page holding it and
 * the RESERVED/SHARED bytes after it never stores data.
 */
export const PENDING_BYTE = 0x40000000;

export type JournalMode = 'rollback' | 'wal';

export interface DatabaseHeader {
  pageSize: number;
  /** Byte 18: 1 legacy, 2 WAL. */
  writeVersion: number;
  /** Byte 19: 1 legacy, 2 WAL. */
  readVersion: number;
  /** 'wal' iff both version bytes are 2, as LiteFS decides. */
  mode: JournalMode;
  reservedBytes: number;
  /** [24] file change counter. */
  changeCounter: number;
  /** [28] database size in pages as stored; see `databasePageCount` for whether to trust it. */
  headerPageCount: number;
  freelistTrunk: number;
  freelistCount: number;
  /** [40] incremented on every schema change. */
  schemaCookie: number;
  schemaFormat: number;
  defaultCacheSize: number;
  largestRootPage: number;
  /** 1 UTF-8, 2 UTF-16le, 3 UTF-16be. */
  textEncoding: number;
  userVersion: number;
  incrementalVacuum: number;
  applicationId: number;
  /** [92] the value of [24] when [28] was last written. */
  versionValidFor: number;
  /** [96] SQLITE_VERSION_NUMBER of the last writer. */
  sqliteVersion: number;
}

export function isValidPageSize(size: number): boolean {
  return Number.isInteger(size) && size >= MIN_PAGE_SIZE && size <= MAX_PAGE_SIZE && (size & (size - 1)) === 0;
}

/** Page size as stored in the header's u16 (65536 does not fit: it is stored as 1). */
export function encodePageSize(pageSize: number): number {
  if (!isValidPageSize(pageSize)) throw new BadPageSizeError('encode page size', pageSize);
  return pageSize === 65536 ? 1 : pageSize;
}

/** Inverse of `encodePageSize`; throws BadPageSizeError for values SQLite rejects. */
export function decodePageSize(stored: number): number {
  const size = stored === 1 ? 65536 : stored;
  if (!isValidPageSize(size)) throw new BadPageSizeError('database header', stored);
  return size;
}

/** Number of the page that holds PENDING_BYTE (262145 for 4 KiB pages). */
export function lockPageNumber(pageSize: number): number {
  return Math.floor(PENDING_BYTE / pageSize) + 1;
}

/** True if `buf` starts with the SQLite database magic. */
export function hasDatabaseMagic(buf: Uint8Array): boolean {
  return buf.length >= DATABASE_MAGIC.length && DATABASE_MAGIC.equals(buf.subarray(0, DATABASE_MAGIC.length));
}

/**
 * Parses the first 100 bytes of a database file. Throws ShortBufferError,
 * BadMagicError or BadPageSizeError (LiteFS calls all three "invalid
 * database header").
 */
export function parseDatabaseHeader(buf: Uint8Array): DatabaseHeader {
  if (buf.length < DATABASE_HEADER_SIZE) throw new ShortBufferError('database header', DATABASE_HEADER_SIZE, buf.length);
  if (!hasDatabaseMagic(buf)) throw new BadMagicError('database header');
  const view = new DataView(buf.buffer, buf.byteOffset, DATABASE_HEADER_SIZE);
  const u32 = (off: number): number => view.getUint32(off, false);
  const writeVersion = buf[18]!;
  const readVersion = buf[19]!;
  return {
    pageSize: decodePageSize(view.getUint16(16, false)),
    writeVersion,
    readVersion,
    mode: writeVersion === 2 && readVersion === 2 ? 'wal' : 'rollback',
    reservedBytes: buf[20]!,
    changeCounter: u32(24),
    headerPageCount: u32(28),
    freelistTrunk: u32(32),
    freelistCount: u32(36),
    schemaCookie: u32(40),
    schemaFormat: u32(44),
    defaultCacheSize: u32(48),
    largestRootPage: u32(52),
    textEncoding: u32(56),
    userVersion: u32(60),
    incrementalVacuum: u32(64),
    applicationId: u32(68),
    versionValidFor: u32(92),
    sqliteVersion: u32(96),
  };
}

/**
 * Database size in pages by SQLite's rule: [28] is trusted only when it is
 * non-zero and [24] == [92] (a legacy writer that did not maintain it leaves
 * them different); otherwise the size comes from the file length.
 */
export function databasePageCount(header: DatabaseHeader, fileSize: number): number {
  if (header.headerPageCount !== 0 && header.changeCounter === header.versionValidFor) {
    return header.headerPageCount;
  }
  return Math.floor(fileSize / header.pageSize);
}
