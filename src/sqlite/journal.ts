import { ShortBufferError } from './errors.js';
import { isValidPageSize, lockPageNumber } from './header.js';
import { readExactly, type PositionalReader } from './positional.js';

/** d9 d5 05 f9 20 a1 63 d7 */
export const JOURNAL_MAGIC: Buffer = Buffer.from([0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
/** Meaningful bytes of a journal header; the rest of its sector is padding. */
export const JOURNAL_HEADER_FIELDS_SIZE = 28;
/** nRec of a journal written with synchronous=OFF: records run to the end of the file. */
export const JOURNAL_NREC_NO_SYNC = 0xffffffff;
export const MIN_SECTOR_SIZE = 32;
export const MAX_SECTOR_SIZE = 65536;

export interface JournalHeader {
  /** False when the first 8 bytes are not the magic: unsynced, or finalized (PERSIST). */
  hasMagic: boolean;
  nRec: number;
  /** Seed of every record checksum in this segment. */
  nonce: number;
  /** Database size in pages before the transaction. */
  initialPageCount: number;
  sectorSize: number;
  /** 0 in journals from before SQLite 3.5.8: use the database's page size. */
  pageSize: number;
}

/** Parses the 28 meaningful bytes of a journal header, without validating them. */
export function parseJournalHeader(buf: Uint8Array): JournalHeader {
  if (buf.length < JOURNAL_HEADER_FIELDS_SIZE) {
    throw new ShortBufferError('journal header', JOURNAL_HEADER_FIELDS_SIZE, buf.length);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, JOURNAL_HEADER_FIELDS_SIZE);
  return {
    hasMagic: JOURNAL_MAGIC.equals(buf.subarray(0, 8)),
    nRec: view.getUint32(8, false),
    nonce: view.getUint32(12, false),
    initialPageCount: view.getUint32(16, false),
    sectorSize: view.getUint32(20, false),
    pageSize: view.getUint32(24, false),
  };
}

/** Encodes a journal header padded to one sector (for tests and for our own journals). */
export function buildJournalHeader(h: Omit<JournalHeader, 'hasMagic'> & { hasMagic?: boolean }): Buffer {
  const buf = Buffer.alloc(Math.max(h.sectorSize, JOURNAL_HEADER_FIELDS_SIZE));
  if (h.hasMagic !== false) JOURNAL_MAGIC.copy(buf, 0);
  buf.writeUInt32BE(h.nRec >>> 0, 8);
  buf.writeUInt32BE(h.nonce >>> 0, 12);
  buf.writeUInt32BE(h.initialPageCount >>> 0, 16);
  buf.writeUInt32BE(h.sectorSize >>> 0, 20);
  buf.writeUInt32BE(h.pageSize >>> 0, 24);
  return buf;
}

/**
 * Record checksum: the nonce plus every 200th byte counting down from the
 * end of the page (indices P-200, P-400, ... > 0), in u32 arithmetic. Not a CRC.
 */
export function journalRecordChecksum(nonce: number, page: Uint8Array): number {
  let sum = nonce;
  for (let i = page.length - 200; i > 0; i -= 200) sum += page[i]!;
  return sum >>> 0;
}

/** Encodes one record: pgno, original page, checksum. */
export function buildJournalRecord(pgno: number, page: Uint8Array, nonce: number): Buffer {
  const buf = Buffer.alloc(page.length + 8);
  buf.writeUInt32BE(pgno >>> 0, 0);
  buf.set(page, 4);
  buf.writeUInt32BE(journalRecordChecksum(nonce, page), page.length + 4);
  return buf;
}

export type JournalStopReason =
  /** Ran out of segments or bytes (including a record cut short). */
  | 'eof'
  /** A header without the magic: unsynced or finalized. */
  | 'no-magic'
  /** Sector or page size in the first header out of range. */
  | 'bad-sizes'
  /** A record for page 0. */
  | 'zero-pgno'
  /** A record for the lock page: the super-journal name follows. */
  | 'lock-page'
  | 'checksum-mismatch';

/**
 * How to read a segment whose nRec is 0. SQLite reads zero records from a
 * hot journal left by a crashed process, but when a process rolls back its
 * own transaction it takes the count from the file size (the header may not
 * have been updated since the records were written). LiteFS always uses the
 * file size.
 */
export type NRecZero = 'hot' | 'own';

export interface JournalReaderOptions {
  nRecZero?: NRecZero;
  /** Page size to use when the header's is 0 (journals from before 3.5.8). */
  databasePageSize?: number;
}

export interface JournalSegment {
  /** File offset of the header. */
  offset: number;
  header: JournalHeader;
  /** Records this segment may hold after nRec 0 / 0xFFFFFFFF resolution. */
  recordCount: number;
}

/** One valid record. `data` is a view into the reader's buffer, valid until the next `next()`. */
export interface JournalRecord {
  /** 0-based index of the segment it belongs to. */
  segment: number;
  pgno: number;
  /** File offset of the original page content (after the 4-byte pgno). */
  dataOffset: number;
  data: Buffer;
}

/**
 * Reads a rollback journal's valid records in file order, applying SQLite's
 * playback stop rules. The sector and page sizes come from the first header
 * only. Memory is one record buffer (page size + 8, at most 65544 bytes) and
 * one header sector (at most 65536 bytes); every count derived from the file
 * (nRec 0xFFFFFFFF, nRec 0) is consumed lazily and bounded by the file size.
 */
export class JournalReader {
  /** The first header, or null if the journal is too short to have one. */
  readonly firstHeader: JournalHeader | null = null;
  readonly pageSize: number = 0;
  readonly sectorSize: number = 0;
  readonly segments: JournalSegment[] = [];
  private readonly nRecZero: NRecZero;
  private readonly fileSize: number;
  private record: Buffer = Buffer.alloc(0);
  private headerOffset = 0;
  private nextRecordOffset = 0;
  private remainingInSegment = 0;
  private noMoreHeaders = false;
  private stopped: JournalStopReason | null = null;
  private readonly lockPage: number = 0;

  constructor(
    private readonly src: PositionalReader,
    options: JournalReaderOptions = {},
  ) {
    this.nRecZero = options.nRecZero ?? 'hot';
    this.fileSize = src.size();
    const fields = Buffer.alloc(JOURNAL_HEADER_FIELDS_SIZE);
    if (!readExactly(src, fields, 0)) {
      this.stopped = 'eof';
      return;
    }
    const first = parseJournalHeader(fields);
    this.firstHeader = first;
    if (!first.hasMagic) {
      this.stopped = 'no-magic';
      return;
    }
    const pageSize = first.pageSize === 0 ? (options.databasePageSize ?? 0) : first.pageSize;
    const sector = first.sectorSize;
    const sectorOk = sector >= MIN_SECTOR_SIZE && sector <= MAX_SECTOR_SIZE && (sector & (sector - 1)) === 0;
    if (!isValidPageSize(pageSize) || !sectorOk) {
      this.stopped = 'bad-sizes';
      return;
    }
    // Like SQLite, a header counts only if its whole sector is in the file.
    if (sector > this.fileSize) {
      this.stopped = 'eof';
      return;
    }
    this.pageSize = pageSize;
    this.sectorSize = sector;
    this.lockPage = lockPageNumber(pageSize);
    this.record = Buffer.alloc(pageSize + 8);
    this.beginSegment(0, first);
  }

  /** Why reading stopped, once `next()` has returned null (or at construction). */
  get stopReason(): JournalStopReason | null {
    return this.stopped;
  }

  /** Size of one record: pgno, page, checksum. */
  get recordSize(): number {
    return this.pageSize + 8;
  }

  /** The next valid record, or null once playback would stop. */
  next(): JournalRecord | null {
    while (this.stopped === null) {
      if (this.remainingInSegment === 0) {
        if (!this.nextSegment()) break;
        continue;
      }
      const offset = this.nextRecordOffset;
      if (!readExactly(this.src, this.record, offset)) return this.stop('eof');
      const pgno = this.record.readUInt32BE(0);
      if (pgno === 0) return this.stop('zero-pgno');
      if (pgno === this.lockPage) return this.stop('lock-page');
      const data = this.record.subarray(4, 4 + this.pageSize);
      const header = this.segments[this.segments.length - 1]!.header;
      if (journalRecordChecksum(header.nonce, data) !== this.record.readUInt32BE(4 + this.pageSize)) {
        return this.stop('checksum-mismatch');
      }
      this.remainingInSegment--;
      this.nextRecordOffset = offset + this.recordSize;
      return { segment: this.segments.length - 1, pgno, dataOffset: offset + 4, data };
    }
    return null;
  }

  private beginSegment(offset: number, header: JournalHeader): void {
    const recordsStart = offset + this.sectorSize;
    const fromFileSize = Math.max(0, Math.floor((this.fileSize - recordsStart) / this.recordSize));
    let count = header.nRec;
    if (count === JOURNAL_NREC_NO_SYNC) {
      // No-sync journals have a single header; records run to the end.
      count = fromFileSize;
      this.noMoreHeaders = true;
    } else if (count === 0 && this.nRecZero === 'own') {
      count = fromFileSize;
    }
    this.segments.push({ offset, header, recordCount: count });
    this.headerOffset = offset;
    this.nextRecordOffset = recordsStart;
    this.remainingInSegment = count;
  }

  /** Moves to the next sector-aligned header; false (with a stop reason) if there is none. */
  private nextSegment(): boolean {
    if (this.noMoreHeaders) return this.stopFalse('eof');
    // The next header starts at the first sector boundary after the records.
    const end = this.nextRecordOffset;
    const offset = Math.ceil(end / this.sectorSize) * this.sectorSize;
    if (offset <= this.headerOffset) return this.stopFalse('eof');
    // SQLite requires the whole header sector to be present.
    if (offset + this.sectorSize > this.fileSize) return this.stopFalse('eof');
    const fields = Buffer.alloc(JOURNAL_HEADER_FIELDS_SIZE);
    if (!readExactly(this.src, fields, offset)) return this.stopFalse('eof');
    const header = parseJournalHeader(fields);
    if (!header.hasMagic) return this.stopFalse('no-magic');
    this.beginSegment(offset, header);
    return true;
  }

  private stop(reason: JournalStopReason): null {
    this.stopped = reason;
    return null;
  }

  private stopFalse(reason: JournalStopReason): false {
    this.stopped = reason;
    return false;
  }
}
