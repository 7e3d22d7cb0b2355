/**
 * Where a primary keeps its LTX files for the long term (ARCHITECTURE §3.7,
 * ref §11.1). A backup holds, per database, a chain of LTX files; each new
 * file must continue the chain exactly, or be a snapshot.
 */
import { type Header, type Pos, formatFilename, formatPos, isSnapshot } from '../ltx/index.js';

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
  /** Releases connections (at shutdown). */
  close?(): void;
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

/**
 * Throws unless the file with `header` may join database `name`'s backup
 * at position `at`: it continues the chain exactly, or it is a snapshot
 * ahead of it (which starts the chain over; older files stay).
 */
export function checkJoinsChain(name: string, header: Header, at: Pos): void {
  checkDatabaseName(name);
  const continues = header.minTXID === at.txid + 1n && header.preApplyChecksum === at.postApplyChecksum;
  const restarts = isSnapshot(header) && header.maxTXID > at.txid;
  if (continues || restarts) return;
  const file = formatFilename(header.minTXID, header.maxTXID);
  const pre = formatPos({ txid: header.minTXID - 1n, postApplyChecksum: header.preApplyChecksum });
  throw new PosMismatchError(at, `${name}: ${file} (pre-apply ${pre}) does not continue the backup`);
}

/** A database name is one path component: it names the backup's folder or key prefix. */
export function checkDatabaseName(name: string): void {
  if (!/^[^/\0]+$/.test(name) || name === '.' || name === '..') throw new Error(`invalid database name: ${JSON.stringify(name)}`);
}
