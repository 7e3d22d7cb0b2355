/** Typed errors of the store, for conditions the file-system layer maps to an errno. */

/** CREATE of a database name that already holds a committed database (EEXIST). */
export class DatabaseExistsError extends Error {
  override readonly name = 'DatabaseExistsError';
  constructor(readonly database: string) {
    super(`database already exists: ${database}`);
  }
}

/**
 * A write or truncate the store refuses because it would break what LiteFS
 * can track: a database write that is not one aligned page, a first write
 * without a SQLite header, a WAL write before the committed end, a journal or
 * WAL truncated to a non-zero size. SQLite sees an I/O error.
 */
export class InvalidWriteError extends Error {
  override readonly name = 'InvalidWriteError';
  constructor(
    readonly database: string,
    message: string,
    /** The same refusal as the previous one on this database: already logged (SQLite retries while rolling back). */
    readonly repeated = false,
  ) {
    super(`${database}: ${message}`);
  }
}

/** After a commit, the checksum recomputed from disk differs from the one in the LTX file (strict-verify). */
export class ChecksumMismatchError extends Error {
  override readonly name = 'ChecksumMismatchError';
  constructor(
    readonly database: string,
    readonly txid: bigint,
    readonly expected: bigint,
    readonly actual: bigint,
  ) {
    super(
      `${database}: database checksum ${actual.toString(16).padStart(16, '0')} on TXID ${txid} ` +
        `does not match LTX post-apply checksum ${expected.toString(16).padStart(16, '0')}`,
    );
  }
}
