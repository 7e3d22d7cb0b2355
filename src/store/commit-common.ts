/** What every commit does once its pages are known: write the LTX file, advance the position, tell the main thread. */
import { type Header, HeaderFlagCompressLZ4, checksumDatabase, formatHex16, makeHeader } from '../ltx/index.js';
import { WAL_FRAME_HEADER_SIZE } from '../sqlite/index.js';
import type { DB } from './db.js';
import { ChecksumMismatchError } from './errors.js';
import { maybeEnforceRetention } from './retention.js';
import { type PageEmitter, type WrittenLTX, writeLTXFile } from './ltx-writer.js';

/**
 * The header of this node's next transaction: TXID = position + 1, chained to
 * the current post-apply checksum, stamped with this node's id and clock, LZ4
 * when `data.compress` is set. `fields` adds or overrides the rest.
 */
export function nextTxHeader(db: DB, fields: Partial<Header> & { readonly commit: number }): Header {
  const txid = db.pos.txid + 1n;
  return makeHeader({
    flags: db.ctx.options.compress ? HeaderFlagCompressLZ4 : 0,
    pageSize: db.pageSize,
    minTXID: txid,
    maxTXID: txid,
    timestamp: db.pinnedTimestamp ?? BigInt(db.ctx.now()),
    preApplyChecksum: db.pos.postApplyChecksum,
    nodeID: db.ctx.nodeId,
    ...fields,
  });
}

/**
 * How durable the LTX file must be when publishCommit returns:
 * - 'now': fsynced with its folder (and every pending file before it);
 * - 'group': written only; the WAL still holds the transaction, and the file
 *   joins the pending group that DB.syncPendingLTX makes durable before the
 *   WAL frames can go (ARCHITECTURE §7).
 */
export type LTXDurability = 'now' | 'group';

/**
 * Writes the LTX file, then advances the position. The position moves as
 * soon as the file is written, so that a later failure (finalizing the
 * journal) can never make the next commit reuse this TXID.
 */
export function publishCommit(db: DB, header: Header, postApply: bigint, pages: PageEmitter, durability: LTXDurability = 'now'): WrittenLTX {
  // Pages applied as a replica must not depend on start-up's re-apply window any more.
  db.syncAppliedPages();
  // A durable file after pending ones would leave a hole in the chain after a power loss.
  if (durability === 'now') db.syncPendingLTX();
  const written = writeLTXFile(db.io, db.ltxDir, header, postApply, pages, durability === 'now');
  if (durability === 'group') db.addPendingLTX(written.path);
  advancePosition(db, header, postApply, written.pageCount, written.bytes);
  maybeEnforceRetention(db);
  return written;
}

/**
 * The database is at the LTX file's position now (a commit or a replica
 * apply): position, size and time, and the `tx` event (with the file's
 * bytes when the caller has them, for streaming).
 */
export function advancePosition(db: DB, header: Header, postApply: bigint, pages: number, ltx: Uint8Array | null): void {
  db.pos = { txid: header.maxTXID, postApplyChecksum: postApply };
  db.pageN = header.commit;
  db.timestamp = Number(header.timestamp);
  db.ctx.post({
    type: 'tx',
    db: db.name,
    txid: formatHex16(header.maxTXID),
    checksum: formatHex16(postApply),
    pages,
    pageSize: header.pageSize,
    commit: header.commit,
    timestamp: Number(header.timestamp),
    ...(ltx !== null ? { ltx } : {}),
  });
}

/**
 * strict-verify (ref §6.5): the checksum of the database as it reads now
 * (WAL frames over the file), recomputed from disk, must equal the position's.
 * O(database size): for tests and paranoid deployments.
 */
export function verifyDatabaseChecksum(db: DB): void {
  const io = db.io;
  const page = new Uint8Array(db.pageSize);
  const dbFd = io.open(db.databasePath, 'read');
  const walFd = db.wal.frameOffsets.size > 0 ? io.open(db.walPath, 'read') : -1;
  try {
    const actual = checksumDatabase(db.pageSize, db.pageN, (pgno) => {
      const frame = db.wal.frameOffsets.get(pgno);
      const n =
        frame !== undefined
          ? io.read(walFd, page, frame + WAL_FRAME_HEADER_SIZE)
          : io.read(dbFd, page, (pgno - 1) * db.pageSize);
      if (n !== page.length) throw new Error(`${db.name}: strict-verify: page ${pgno} is missing from disk`);
      return page;
    });
    if (actual !== db.pos.postApplyChecksum) {
      throw new ChecksumMismatchError(db.name, db.pos.txid, db.pos.postApplyChecksum, actual);
    }
  } finally {
    io.close(dbFd);
    if (walFd >= 0) io.close(walFd);
  }
}
