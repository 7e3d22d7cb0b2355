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

/**
 * An incremental LTX file does not continue the local position (ref §9.6
 * step 6): nothing was changed. `local` is where this database is,
 * `expected` the position the file starts from.
 */
export class ApplyPosMismatchError extends Error {
  override readonly name = 'ApplyPosMismatchError';
  constructor(
    readonly database: string,
    readonly local: { readonly txid: bigint; readonly postApplyChecksum: bigint },
    readonly expected: { readonly txid: bigint; readonly postApplyChecksum: bigint },
    readonly file: string,
  ) {
    super(
      `${database}: position mismatch: ${file} starts after TXID ${hex16(expected.txid)} checksum ${hex16(expected.postApplyChecksum)}, ` +
        `local position is TXID ${hex16(local.txid)} checksum ${hex16(local.postApplyChecksum)}; nothing applied`,
    );
  }
}

/**
 * Applying an LTX file failed after the database could have changed (the
 * file is already in `ltx/`). Not reportable to SQLite clients: the daemon
 * must stop; start-up re-applies the LTX file (ref §6.6 step 3, exit 99).
 */
export class ApplyFatalError extends Error {
  override readonly name = 'ApplyFatalError';
  constructor(
    readonly database: string,
    message: string,
  ) {
    super(`${database}: ${message}`);
  }
}

function hex16(v: bigint): string {
  return v.toString(16).padStart(16, '0');
}
