/**
 * Where a primary keeps its LTX files for the long term (ARCHITECTURE §3.7,
 * ref §11.1). A backup holds, per database, a chain of LTX files; each new
 * file must continue the chain exactly, or be a snapshot.
 */
import { type Pos, formatPos } from '../ltx/index.js';

export interface BackupClient {
  /** Where the backup lives, for log lines (`file:///…`). */
  readonly url: string;
  /** The backup's position of every database it holds. */
  posMap(): Promise<Map<string, Pos>>;
  /**
   * Stores one LTX file streamed from `body`: an incremental file that
   * continues the database's backup position exactly, or a snapshot that
   * starts the database's chain (over). Returns the backup's high-water
   * mark: the TXID up to which it now holds the database. Throws
   * PosMismatchError, with the backup's position, for any other file.
   */
  writeTx(name: string, body: AsyncIterable<Uint8Array>): Promise<bigint>;
}

/** The file does not continue the backup's chain; `pos` is where the backup stands (ltx's PosMismatchError). */
export class PosMismatchError extends Error {
  override readonly name = 'PosMismatchError';

  constructor(
    readonly pos: Pos,
    detail: string,
  ) {
    super(`ltx position mismatch (${formatPos(pos)}): ${detail}`);
  }
}
