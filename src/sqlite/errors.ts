/**
 * Typed errors for malformed SQLite files. Callers (the store, fuzz targets)
 * catch `SqliteFormatError` to tell "this file is not what it claims" apart
 * from programming errors and I/O failures.
 */
export class SqliteFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The buffer or file is shorter than the structure being parsed. */
export class ShortBufferError extends SqliteFormatError {
  constructor(
    readonly what: string,
    readonly needed: number,
    readonly got: number,
  ) {
    super(`${what}: need ${needed} bytes, got ${got}`);
  }
}

/** The database file does not start with "SQLite format 3\0". */
export class BadMagicError extends SqliteFormatError {
  constructor(readonly what: string) {
    super(`${what}: bad magic`);
  }
}

/** A page size field that is not a power of two in 512..65536. */
export class BadPageSizeError extends SqliteFormatError {
  constructor(
    readonly what: string,
    readonly value: number,
  ) {
    super(`${what}: invalid page size ${value}`);
  }
}

export type WalHeaderProblem = 'short' | 'magic' | 'version' | 'page-size' | 'checksum';

/**
 * The WAL header cannot be used. SQLite treats every such WAL as empty;
 * LiteFS fails on a bad magic or version and treats a bad checksum as empty,
 * so the reason is kept for the caller to decide.
 */
export class WalHeaderError extends SqliteFormatError {
  constructor(
    readonly problem: WalHeaderProblem,
    detail: string,
  ) {
    super(`wal header: ${detail}`);
  }
}

/** The wal-index hash table is inconsistent (more probes than slots). */
export class ShmIndexCorruptError extends SqliteFormatError {
  constructor(detail: string) {
    super(`wal-index: ${detail}`);
  }
}
