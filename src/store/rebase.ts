/**
 * Re-basing a database at start-up (ARCHITECTURE §3.3): its file and its LTX
 * chain disagree after recovery, and the file is what SQLite will read, so
 * the file becomes the new base. A copy of it goes to a forensic folder, a
 * snapshot LTX `1-(N+1)` of it is written (minTXID 1 marks a snapshot; the
 * TXID continues after every TXID handed out before), and the older LTX
 * files move into the forensic folder. Replicas then receive a snapshot.
 */
import { join } from 'node:path';
import { formatHex16, parseFilename } from '../ltx/index.js';
import { nextTxHeader, publishCommit } from './commit-common.js';
import type { DB } from './db.js';
import { ForensicCase } from './forensic.js';

/**
 * `actual` is the database checksum as the file reads now; `highestTXID`
 * the highest TXID of any LTX file seen at open, including set-aside ones.
 * Returns the new TXID (16 hex digits).
 */
export function rebase(db: DB, actual: bigint, reason: string, highestTXID: bigint): string {
  const io = db.io;
  const forensic = new ForensicCase(db, reason);
  forensic.copy(db.databasePath);
  const before = { txid: formatHex16(db.pos.txid), postApplyChecksum: formatHex16(db.pos.postApplyChecksum) };
  const older = io.readdir(db.ltxDir).filter((name) => {
    try {
      parseFilename(name);
      return true;
    } catch {
      return false;
    }
  });
  const txid = (db.pos.txid > highestTXID ? db.pos.txid : highestTXID) + 1n;
  const commit = db.pageN;
  // A snapshot (minTXID 1, no pre-apply checksum) that continues the TXIDs.
  const header = nextTxHeader(db, { commit, minTXID: 1n, maxTXID: txid, preApplyChecksum: 0n });
  const lockPage = db.cache().lockPage;
  const page = new Uint8Array(db.pageSize);
  const fd = io.open(db.databasePath, 'read');
  let written: string;
  // No retention sweep from this commit: it would delete the evidence
  // before it moves; the sweep at the end of the open runs instead.
  db.lastRetentionAt = db.ctx.now();
  try {
    // The snapshot is durable before any older file moves: a crash in
    // between leaves it as the newest file, which the next open trusts.
    written = publishCommit(db, header, actual, (emit) => {
      for (let pgno = 1; pgno <= commit; pgno++) {
        if (pgno === lockPage) continue;
        // A page beyond the end reads as zeros, as the checksum counted it.
        page.fill(0);
        io.read(fd, page, (pgno - 1) * db.pageSize);
        emit(pgno, page);
      }
    }).path;
  } finally {
    io.close(fd);
  }
  for (const name of older) if (join(db.ltxDir, name) !== written) forensic.move(join(db.ltxDir, name), 'ltx');
  db.lastRetentionAt = null;
  forensic.close({ before, after: { txid: formatHex16(txid), postApplyChecksum: formatHex16(actual) }, pageSize: db.pageSize, commit }, formatHex16(txid));
  return formatHex16(txid);
}
