/**
 * Opening a database at start-up or creation (ref §6.2), in the simplest
 * form that is still correct for a single node:
 *   1. read the database header (page size, mode);
 *   2. delete the wal-index (`shm`): SQLite rebuilds it;
 *   3. find and verify the last LTX file;
 *   4. roll back a hot journal;
 *   5. load page checksums, re-apply the last LTX file (idempotent: repairs
 *      a crash between "LTX durable" and "journal finalized");
 *   6. turn committed WAL transactions after the last LTX file into LTX
 *      files (see recoverWALTransactions: LiteFS trims them instead), then
 *      checkpoint the WAL into the database file;
 *   7. check that the database checksum equals the position's.
 * Anomalies never stop the open and never delete data (ARCHITECTURE §3.3):
 * the evidence goes to a forensic folder (forensic.ts) and the database is
 * recovered from what is left:
 *   - invalid database header: every file of the database is moved aside,
 *     it starts empty (LiteFS deletes the folder);
 *   - last LTX file fails to verify: set aside, the previous one is the
 *     position (not re-applied: the database file may be past it);
 *   - WAL shorter than the last LTX file says: the WAL is set aside;
 *   - checksum after recovery differs from the position's (or pages without
 *     any LTX file after a fallback): the database is re-based (rebase.ts).
 */
import { join } from 'node:path';
import {
  type Header,
  LTXDecoder,
  checksumDatabase,
  type SyncReader,
  checksumPage,
  forEachChunk,
  isSnapshot,
  formatFilename,
  formatHex16,
  HEADER_SIZE as LTX_HEADER_SIZE,
  lockPgno,
  parseFilename,
  unmarshalHeader,
  verifyFileSync,
} from '../ltx/index.js';
import {
  DATABASE_HEADER_SIZE,
  JournalReader,
  WAL_FRAME_HEADER_SIZE,
  WAL_HEADER_SIZE,
  type WalHeader,
  WalHeaderError,
  WalReader,
  applyRollbackPlan,
  hasDatabaseMagic,
  isValidPageSize,
  parseDatabaseHeader,
  planRollback,
  readWalHeader,
  scanWal,
} from '../sqlite/index.js';
import { MissingChecksumError, loadPageChecksums } from './checksum-cache.js';
import { commitWAL } from './commit-wal.js';
import { type DB, MAX_APPLY_GROUP, MAX_PENDING_LTX, RECEIVED_SUFFIX } from './db.js';
import { removeDatabaseFiles } from './drop.js';
import { ForensicCase } from './forensic.js';
import { syncFile } from './group-sync.js';
import { rebase } from './rebase.js';

/**
 * `created`: a database this running node makes (Store.createDB). Its
 * folder can already hold `.received` files the replica client placed for
 * applies queued behind the one creating it: they are not a crash's leftovers
 * to settle, and are left alone.
 */
export function openDB(db: DB, created = false): void {
  const io = db.io;
  io.mkdirp(db.ltxDir);
  if (readDatabaseHeader(db) === 'invalid') setAsideInvalidDatabase(db);
  if (io.exists(db.shmPath)) io.unlink(db.shmPath);
  const receivedKept = created ? false : settleReceivedFiles(db);
  const found = lastLTX(db);
  const last = found.last;
  rollbackJournal(db);
  readDatabaseHeader(db);
  loadChecksums(db);
  if (last !== null) {
    // After a fallback the database file may already hold the set-aside
    // transaction: writing an older file's pages over it would mix two
    // versions. The checksum check below decides.
    if (!found.fellBack) {
      // A replica's apply group may have lost pages: apply it again. Otherwise
      // only the last file (a crash between "LTX durable" and "journal
      // finalized"); a page changed behind our back stays for the checksum check.
      if (io.exists(db.applyGroupPath) || receivedKept) reapplyNewest(db, last);
      else applyLTX(db, last.path);
    }
    db.pos = { txid: last.header.maxTXID, postApplyChecksum: last.postApply };
    db.timestamp = Number(last.header.timestamp);
  }
  recoverWALTransactions(db, last?.header ?? null);
  // The checkpoint below empties the WAL: the LTX files just made from it first.
  db.syncPendingLTX();
  if (checkpointWAL(db)) loadChecksums(db);
  if (db.pageN > 0 && db.pageSize > 0 && (last !== null || found.fellBack)) {
    const actual = checksumAsFileReads(db);
    if (last !== null && actual !== db.pos.postApplyChecksum) {
      rebase(
        db,
        actual,
        `database checksum ${formatHex16(actual)} on TXID ${formatHex16(db.pos.txid)} does not match LTX post-apply checksum ${formatHex16(db.pos.postApplyChecksum)}`,
        found.highestTXID,
      );
    } else if (last === null && found.fellBack) {
      rebase(db, actual, 'database has pages but no LTX file verifies', found.highestTXID);
    }
  }
  // Whatever was re-applied is durable now (applyLTX synced the file).
  db.endApplyGroup();
  io.fsyncDir(db.dir);
}

/**
 * Received files under RECEIVED_SUFFIX: placed by the replica client and
 * not yet applied, or applied with the suffix drop lost to a power loss.
 * One that verifies under the name it claims and continues the newest LTX
 * file is kept as an LTX file (made durable first); its pages may be partly
 * written, so the caller applies the newest group again (true is
 * returned). Any other never had a page written (pages are written only
 * once the file is durable) and is set aside.
 */
function settleReceivedFiles(db: DB): boolean {
  const io = db.io;
  const received: { name: string; max: bigint }[] = [];
  let newestFinal: { name: string; max: bigint } | null = null;
  for (const name of io.readdir(db.ltxDir)) {
    const ltxName = name.endsWith(RECEIVED_SUFFIX) ? name.slice(0, -RECEIVED_SUFFIX.length) : name;
    let max: bigint;
    try {
      max = parseFilename(ltxName).maxTXID;
    } catch {
      if (name !== ltxName) received.push({ name, max: -1n });
      continue;
    }
    if (name !== ltxName) received.push({ name, max });
    else if (newestFinal === null || max > newestFinal.max) newestFinal = { name, max };
  }
  if (received.length === 0) return false;
  received.sort((a, b) => (a.max < b.max ? -1 : a.max > b.max ? 1 : 0));
  // The chain they must continue: the newest LTX file, then each one kept.
  let prev: VerifiedLTX | string | null = newestFinal === null ? null : verifyLTX(db, join(db.ltxDir, newestFinal.name));
  let kept = false;
  for (const { name } of received) {
    const path = join(db.ltxDir, name);
    const ltxName = name.slice(0, -RECEIVED_SUFFIX.length);
    const verified = verifyLTX(db, path);
    const problem = receivedFileProblem(db, verified, ltxName, prev);
    if (problem !== null) {
      const forensic = new ForensicCase(db, `received file ${name} is set aside (never applied): ${problem}`);
      forensic.move(path, 'ltx');
      forensic.close({ file: name, error: problem });
      continue;
    }
    syncFile(io, path);
    io.rename(path, join(db.ltxDir, ltxName));
    prev = verified;
    kept = true;
  }
  io.fsyncDir(db.ltxDir);
  return kept;
}

/** Why a received file cannot be kept as `ltxName` after `prev` (the newest LTX file kept so far), or null. */
function receivedFileProblem(db: DB, verified: VerifiedLTX | string, ltxName: string, prev: VerifiedLTX | string | null): string | null {
  if (typeof verified === 'string') return verified;
  const { header } = verified;
  const claimed = formatFilename(header.minTXID, header.maxTXID);
  if (claimed !== ltxName) return `its header says ${claimed}`;
  // Only incremental files are placed before their apply (a snapshot waits for its quarantine decision).
  if (isSnapshot(header) || header.commit === 0) return 'not an incremental transaction';
  if (db.io.exists(join(db.ltxDir, ltxName))) return `${ltxName} exists already`;
  if (prev === null || typeof prev === 'string') return 'no LTX file before it verifies';
  if (header.minTXID !== prev.header.maxTXID + 1n || verified.preApply !== prev.postApply) return `it does not continue ${formatFilename(prev.header.minTXID, prev.header.maxTXID)}`;
  return null;
}

/**
 * Applies the newest LTX files again, oldest first, ending with `last`: the
 * unbroken chain of up to MAX_APPLY_GROUP files (from the newest snapshot
 * among them, if any). A replica leaves the database fsync of a group of
 * applies to the group's last one (the marker `ltx/.apply-group` says a
 * group was open), so a power loss can take the pages of up to that many
 * files. Applying a file again is idempotent, and applying an older one
 * first changes nothing the newer ones do not overwrite.
 */
function reapplyNewest(db: DB, last: LastLTX): void {
  const names: { name: string; max: bigint }[] = [];
  for (const name of db.io.readdir(db.ltxDir)) {
    if (!name.endsWith('.ltx')) continue;
    try {
      const max = parseFilename(name).maxTXID;
      if (max < last.header.maxTXID) names.push({ name, max });
    } catch {
      continue;
    }
  }
  names.sort((a, b) => (a.max < b.max ? -1 : a.max > b.max ? 1 : 0));
  const chain: string[] = [last.path];
  let next: VerifiedLTX = { header: last.header, preApply: last.header.preApplyChecksum, postApply: last.postApply };
  for (let i = names.length - 1; i >= 0 && chain.length < MAX_APPLY_GROUP && !isSnapshot(next.header); i--) {
    const path = join(db.ltxDir, names[i]!.name);
    const verified = verifyLTX(db, path);
    if (typeof verified === 'string') break;
    const prev: LastLTX = { path, header: verified.header, postApply: verified.postApply };
    if (chainBreak(prev, next.header, next.preApply) !== null) break;
    chain.unshift(path);
    next = verified;
  }
  chain.forEach((path, i) => applyLTX(db, path, i === chain.length - 1));
}

/** Page size, page count and mode from the database file; nothing if it is empty or missing. */
function readDatabaseHeader(db: DB): 'ok' | 'empty' | 'invalid' {
  const io = db.io;
  const size = io.sizeOf(db.databasePath);
  if (size === null || size === 0) return 'empty';
  const buf = new Uint8Array(DATABASE_HEADER_SIZE);
  const fd = io.open(db.databasePath, 'read');
  try {
    if (io.read(fd, buf, 0) < DATABASE_HEADER_SIZE || !hasDatabaseMagic(buf)) return 'invalid';
  } finally {
    io.close(fd);
  }
  const h = parseDatabaseHeader(buf);
  if (!isValidPageSize(h.pageSize)) return 'invalid';
  db.setPageSize(h.pageSize);
  db.mode = h.mode;
  db.pageN = h.headerPageCount;
  return 'ok';
}

/**
 * A database file without a valid SQLite header (LiteFS deletes the whole
 * folder): every file of the database, LTX files included, is moved to a
 * forensic folder and the database starts empty.
 */
function setAsideInvalidDatabase(db: DB): void {
  const io = db.io;
  const ltxNames = io.readdir(db.ltxDir);
  const forensic = new ForensicCase(db, 'invalid database header');
  for (const path of [db.databasePath, db.journalPath, db.walPath, db.shmPath]) forensic.move(path);
  for (const name of ltxNames) forensic.move(join(db.ltxDir, name), 'ltx');
  forensic.close({ databaseSize: null, lastLTX: ltxNames.filter((n) => n.endsWith('.ltx')).at(-1) ?? null });
  removeDatabaseFiles(db);
}

interface LastLTX {
  readonly path: string;
  readonly header: Header;
  readonly postApply: bigint;
}

interface FoundLTX {
  /** The newest LTX file that verifies. */
  readonly last: LastLTX | null;
  /** True when newer files failed to verify and were set aside. */
  readonly fellBack: boolean;
  /** Highest max TXID of any file seen, set aside or not: a re-base continues after it. */
  readonly highestTXID: bigint;
}

/**
 * The newest LTX file that verifies and continues an unbroken chain.
 *
 * The files of WAL commits are made durable in groups (ARCHITECTURE §7): up
 * to MAX_PENDING_LTX of the newest ones may be missing, empty or torn after
 * a power loss, or present after a hole. So the newest files back to the
 * first durable-at-once one (any file not made from a WAL) are verified
 * oldest first, and the chain ends at the first that fails or does not
 * continue the one before; the files after that point are set aside
 * together (the WAL still holds what they held, recoverWALTransactions
 * writes them again). Older files were durable when written: one that
 * fails to verify (LiteFS refuses to open the store) is set aside and the
 * previous one tried.
 */
function lastLTX(db: DB): FoundLTX {
  const candidates: { name: string; max: bigint }[] = [];
  for (const name of db.io.readdir(db.ltxDir)) {
    if (!name.endsWith('.ltx')) continue;
    try {
      candidates.push({ name, max: parseFilename(name).maxTXID });
    } catch {
      continue;
    }
  }
  candidates.sort((a, b) => (a.max < b.max ? -1 : a.max > b.max ? 1 : 0));
  const highestTXID = candidates.at(-1)?.max ?? 0n;
  const tailStart = groupTailStart(db, candidates);
  let last: LastLTX | null = null;
  let fallbackFrom = tailStart - 1;
  for (let i = tailStart; i < candidates.length; i++) {
    const { name } = candidates[i]!;
    const path = join(db.ltxDir, name);
    const verified = verifyLTX(db, path);
    if (typeof verified !== 'string') {
      const breaks = last === null ? null : chainBreak(last, verified.header, verified.preApply);
      if (breaks === null) {
        last = { path, header: verified.header, postApply: verified.postApply };
        continue;
      }
      setAsideTail(db, candidates.slice(i), breaks);
    } else if (i > tailStart) {
      setAsideTail(db, candidates.slice(i), verified);
    } else {
      // The first file was durable when written: its failure is an anomaly
      // of its own (below); the group after it cannot chain onto it.
      if (i + 1 < candidates.length) setAsideTail(db, candidates.slice(i + 1), `it follows ${name}, which does not verify`);
      fallbackFrom = i;
    }
    break;
  }
  // Files after a durable one never reached the database file (their pages
  // go there only by a checkpoint, after the group sync): the chain's end
  // is applied again as usual.
  if (last !== null) return { last, fellBack: false, highestTXID };
  let fellBack = false;
  for (let i = fallbackFrom; i >= 0; i--) {
    const { name } = candidates[i]!;
    const path = join(db.ltxDir, name);
    const verified = verifyLTX(db, path);
    if (typeof verified === 'string') {
      const forensic = new ForensicCase(db, `last LTX file ${name} fails to verify`);
      forensic.move(path, 'ltx');
      forensic.close({ file: name, error: verified });
      fellBack = true;
      continue;
    }
    return { last: { path, header: verified.header, postApply: verified.postApply }, fellBack, highestTXID };
  }
  return { last: null, fellBack, highestTXID };
}

/**
 * Index of the oldest file that may have been written without fsync: the
 * newest files made from a WAL, at most MAX_PENDING_LTX + 1 of them (one
 * more than can be pending, so the chain check starts at a durable file).
 */
function groupTailStart(db: DB, ascending: readonly { name: string }[]): number {
  const buf = new Uint8Array(LTX_HEADER_SIZE);
  let i = ascending.length;
  while (i > 0 && ascending.length - i <= MAX_PENDING_LTX) {
    const fd = db.io.open(join(db.ltxDir, ascending[i - 1]!.name), 'read');
    let fromWAL = true;
    try {
      // A short or unreadable header is a torn group file: inside the tail.
      if (db.io.read(fd, buf, 0) === buf.length) fromWAL = unmarshalHeader(buf).walSize > 0n;
    } catch {
      fromWAL = true;
    } finally {
      db.io.close(fd);
    }
    i--;
    if (!fromWAL) break;
  }
  return i;
}

interface VerifiedLTX {
  readonly header: Header;
  readonly preApply: bigint;
  readonly postApply: bigint;
}

/** The file's ends when it verifies in full; otherwise why not. */
function verifyLTX(db: DB, path: string): VerifiedLTX | string {
  const fd = db.io.open(path, 'read');
  try {
    const summary = verifyFileSync(sequentialReader(db, fd));
    return { header: summary.header, preApply: summary.header.preApplyChecksum, postApply: summary.trailer.postApplyChecksum };
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    db.io.close(fd);
  }
}

/** Why `header` does not continue `prev`, or null when it does (a snapshot starts a chain of its own). */
function chainBreak(prev: LastLTX, header: Header, preApply: bigint): string | null {
  if (isSnapshot(header)) return null;
  if (header.minTXID !== prev.header.maxTXID + 1n) return `starts at TXID ${formatHex16(header.minTXID)}, after ${formatHex16(prev.header.maxTXID)}`;
  if (preApply !== prev.postApply) return `pre-apply checksum ${formatHex16(preApply)} is not the post-apply checksum ${formatHex16(prev.postApply)} of the file before`;
  return null;
}

/** The files from the first one that breaks the chain on, set aside as one case. */
function setAsideTail(db: DB, files: readonly { name: string }[], why: string): void {
  const names = files.map((f) => f.name);
  const forensic = new ForensicCase(
    db,
    `LTX file ${names[0]} breaks the chain (${why}): it and the ${names.length - 1} newer file(s) are set aside; a power loss before their group sync explains it`,
  );
  for (const name of names) forensic.move(join(db.ltxDir, name), 'ltx');
  forensic.close({ setAside: names, error: why });
}

/**
 * Committed WAL transactions that have no LTX file yet become LTX files now
 * (LiteFS trims them away instead, ref §6.2 step 5). SQLite treats a WAL
 * commit as done when it releases its WRITE lock, and ignores a failed
 * unlock: if the daemon died while writing that LTX file, the application
 * was told "committed" and ARCHITECTURE §7 promises the transaction
 * survives. The frames are in the WAL, valid by checksum, so they are the
 * transaction. (In a cluster a restarted node that is no longer primary
 * must not do this: later work, with the lease.)
 *
 * The WAL continues the last LTX file when its salts are the ones that file
 * recorded: the new transactions start at its end. Otherwise the WAL was
 * started after the last LTX file (SQLite restarts a WAL only once every
 * frame is in the database file) and all of it is new.
 */
function recoverWALTransactions(db: DB, last: Header | null): void {
  const io = db.io;
  const size = io.sizeOf(db.walPath);
  if (db.pageSize === 0) return;
  if (size === null || size < WAL_HEADER_SIZE) {
    // The last LTX file came from a WAL that is gone (a power loss took the
    // new file's folder entry) and its pages never reached the database
    // file: the LTX files of that WAL are the transactions.
    if (last !== null && last.walSize > 0n && db.mode === 'wal' && !databaseHoldsPosition(db)) {
      const replayed = replayWALTransactions(db, { salt1: last.walSalt1, salt2: last.walSalt2 });
      db.ctx.log(`${db.name}: the WAL of the last LTX file is missing; ${replayed.length} LTX file(s) of it applied to the database file`);
    }
    return;
  }
  const fd = io.open(db.walPath, 'read');
  let outcome: WalOutcome;
  try {
    outcome = trackWAL(db, fd, last);
  } finally {
    io.close(fd);
  }
  if (outcome.kind === 'none') return;
  if (outcome.kind === 'short') {
    // Frames the LTX files recorded are missing (LiteFS: the open fails):
    // keep the WAL as evidence and recover from the database file plus the
    // LTX files: every transaction of this WAL has one (same salts), and the
    // file holds everything checkpointed before the WAL started. The
    // checksum check re-bases if they still do not agree.
    setAsideWAL(db, `WAL ends at ${outcome.validEnd}, before the end of the last LTX file (${outcome.expectedEnd})`, outcome.header, {
      walValidEnd: outcome.validEnd,
      ltxWalEnd: outcome.expectedEnd,
    });
    return;
  }
  if (outcome.kind === 'older') {
    // An older WAL is back (its restart was lost) while newer LTX files
    // survived: those files are the truth, the WAL is evidence.
    setAsideWAL(db, `WAL (salts ${outcome.walSalts}) is older than the last LTX file (salts ${outcome.ltxSalts})`, outcome.header, {
      walSalts: outcome.walSalts,
      ltxSalts: outcome.ltxSalts,
    });
    return;
  }
  if (outcome.kind === 'stale') {
    db.ctx.log(`${db.name}: WAL does not continue the last LTX file of a rollback-mode database; moved to wal.removed`);
    io.rename(db.walPath, `${db.walPath}.removed`);
    io.fsyncDir(db.dir);
    return;
  }
  let recovered = 0;
  while (commitWAL(db)) recovered++;
  if (recovered > 0) db.ctx.log(`${db.name}: recovered ${recovered} committed WAL transaction(s) into LTX files`);
}

/** Moves the WAL to a forensic folder and rebuilds the database file from the LTX files of `header`'s WAL (same salts). */
function setAsideWAL(db: DB, reason: string, header: WalHeader, facts: Record<string, unknown>): void {
  const forensic = new ForensicCase(db, reason);
  forensic.move(db.walPath);
  db.resetWalPages();
  db.wal.header = null;
  const replayed = replayWALTransactions(db, header);
  forensic.close({ ...facts, txid: formatHex16(db.pos.txid), replayedLTX: replayed });
}

/**
 * Re-applies, in TXID order, every LTX file written from the WAL with
 * `header`'s salts (the last one included, so the database ends at the
 * position). Returns their names.
 */
function replayWALTransactions(db: DB, header: Pick<WalHeader, 'salt1' | 'salt2'>): string[] {
  const io = db.io;
  const files: { name: string; max: bigint }[] = [];
  const buf = new Uint8Array(LTX_HEADER_SIZE);
  for (const name of io.readdir(db.ltxDir)) {
    let max: bigint;
    try {
      max = parseFilename(name).maxTXID;
    } catch {
      continue;
    }
    const fd = io.open(join(db.ltxDir, name), 'read');
    try {
      if (io.read(fd, buf, 0) < buf.length) continue;
      const h = unmarshalHeader(buf);
      if (h.walSize > 0n && h.walSalt1 === header.salt1 && h.walSalt2 === header.salt2) files.push({ name, max });
    } catch {
      continue;
    } finally {
      io.close(fd);
    }
  }
  files.sort((a, b) => (a.max < b.max ? -1 : a.max > b.max ? 1 : 0));
  const replayed: string[] = [];
  for (const { name } of files) {
    const path = join(db.ltxDir, name);
    const fd = io.open(path, 'read');
    try {
      verifyFileSync(sequentialReader(db, fd));
    } catch {
      // Not applied: the checksum check decides whether a re-base is needed.
      continue;
    } finally {
      io.close(fd);
    }
    applyLTX(db, path);
    replayed.push(name);
  }
  return replayed;
}

type WalOutcome =
  /** No usable WAL (bad header, other page size). */
  | { readonly kind: 'none' }
  /** Left by a switch back to a rollback journal: older than the last LTX file. */
  | { readonly kind: 'stale' }
  /** The WAL is from before the last LTX file's WAL (`header` carries that file's salts, for the replay). */
  | { readonly kind: 'older'; readonly walSalts: string; readonly ltxSalts: string; readonly header: WalHeader }
  /** Valid frames end before the last LTX file's end. */
  | { readonly kind: 'short'; readonly validEnd: number; readonly expectedEnd: number; readonly header: WalHeader }
  /** The WAL state (header, offset, overlay of pages with LTX files) is loaded. */
  | { readonly kind: 'tracked' };

/** Reads the WAL's header and the frames that already have LTX files into the DB's WAL state. */
function trackWAL(db: DB, fd: number, last: Header | null): WalOutcome {
  const io = db.io;
  let header: WalHeader;
  try {
    header = readWalHeader(db.reader(fd));
  } catch (err) {
    if (err instanceof WalHeaderError) return { kind: 'none' };
    throw err;
  }
  if (header.pageSize !== db.pageSize) return { kind: 'none' };
  const sameWAL = last !== null && last.walSalt1 === header.salt1 && last.walSalt2 === header.salt2;
  // A WAL left behind by a switch back to a rollback journal: its frames
  // are older than the last LTX file. Kept for inspection, as LiteFS does.
  if (!sameWAL && db.mode !== 'wal') return { kind: 'stale' };
  if (!sameWAL && last !== null && last.walSize > 0n && walIsOlder(db, header, last)) {
    const salts = (a: number, b: number): string => `${a.toString(16)}/${b.toString(16)}`;
    return {
      kind: 'older',
      walSalts: salts(header.salt1, header.salt2),
      ltxSalts: salts(last.walSalt1, last.walSalt2),
      header: { ...header, salt1: last.walSalt1, salt2: last.walSalt2 },
    };
  }
  const start = sameWAL ? Number(last.walOffset + last.walSize) : WAL_HEADER_SIZE;
  // Frames up to `start` already have LTX files but may not be in the
  // database file yet: they are the WAL overlay of the checksum cache.
  const reader = new WalReader(db.reader(fd), header);
  const latest = new Map<number, number>();
  const pending = new Map<number, number>();
  while (reader.offset < start) {
    const frame = reader.next();
    if (frame === null) return { kind: 'short', validEnd: reader.offset, expectedEnd: start, header };
    pending.set(frame.pgno, frame.offset);
    if (frame.commit !== 0) {
      for (const [pgno, off] of pending) latest.set(pgno, off);
      pending.clear();
    }
  }
  const cache = db.cache();
  const page = new Uint8Array(db.pageSize);
  for (const [pgno, off] of latest) {
    if (pgno > db.pageN) continue;
    io.read(fd, page, off + WAL_FRAME_HEADER_SIZE);
    cache.wal.setChecksum(pgno, checksumPage(pgno, page));
    db.wal.frameOffsets.set(pgno, off);
  }
  db.wal.header = header;
  db.wal.offset = start;
  db.wal.checksum = reader.checksum;
  return { kind: 'tracked' };
}

/**
 * A WAL whose salts differ from the last LTX file's is normally newer:
 * SQLite restarted it once every frame of the last one was in the database
 * file. It is older instead when a power loss undid the restart but kept
 * newer LTX files (written back by the OS before their group sync). Two
 * signs: an LTX file of the newest group has the WAL's salts, or the
 * database file alone does not hold the position (a restart needs a full
 * checkpoint, and the last LTX file has just been applied to the file).
 */
function walIsOlder(db: DB, wal: WalHeader, last: Header): boolean {
  if (!databaseHoldsPosition(db)) return true;
  const names = db.io.readdir(db.ltxDir).filter((n) => n.endsWith('.ltx'));
  const buf = new Uint8Array(LTX_HEADER_SIZE);
  for (const name of names.slice(-(MAX_PENDING_LTX + 1)).reverse()) {
    const fd = db.io.open(join(db.ltxDir, name), 'read');
    try {
      if (db.io.read(fd, buf, 0) < buf.length) continue;
      const h = unmarshalHeader(buf);
      if (h.walSize === 0n) break;
      if (h.walSalt1 === wal.salt1 && h.walSalt2 === wal.salt2 && h.maxTXID < last.maxTXID) return true;
    } catch {
      continue;
    } finally {
      db.io.close(fd);
    }
  }
  return false;
}

/**
 * The database's checksum over `pageN` pages. Pages the file does not have
 * (it is shorter than its header says, after a loss no LTX file repairs)
 * count as zeros, as the re-base's snapshot will read them.
 */
function checksumAsFileReads(db: DB): bigint {
  try {
    return db.cache().databaseChecksum(db.pageN);
  } catch (err) {
    if (!(err instanceof MissingChecksumError)) throw err;
  }
  const fd = db.io.open(db.databasePath, 'read');
  try {
    const page = new Uint8Array(db.pageSize);
    return checksumDatabase(db.pageSize, db.pageN, (pgno) => {
      page.fill(0);
      db.io.read(fd, page, (pgno - 1) * db.pageSize);
      return page;
    });
  } finally {
    db.io.close(fd);
  }
}

/** True when the database file alone (no WAL) has the position's checksum. */
function databaseHoldsPosition(db: DB): boolean {
  if (db.pageN === 0) return true;
  try {
    return db.cache().databaseChecksum(db.pageN) === db.pos.postApplyChecksum;
  } catch (err) {
    // Pages the position has are not in the file at all.
    if (err instanceof MissingChecksumError) return false;
    throw err;
  }
}

/** What a journal rollback wrote into the database file, for callers that track it. */
export interface RollbackObserver {
  page(data: Uint8Array, offset: number): void;
  truncated(size: number): void;
}

/**
 * ref §6.2 step 6a: a journal left by a crash (or by a transaction cut off
 * when the node stepped down) undoes its transaction's database writes,
 * then is removed. Returns true when pages were written back.
 */
export function rollbackJournal(db: DB, observe?: RollbackObserver): boolean {
  let rolledBack = false;
  const io = db.io;
  if (!io.exists(db.journalPath)) return false;
  const jfd = io.open(db.journalPath, 'read');
  try {
    const plan = planRollback(new JournalReader(db.reader(jfd), { databasePageSize: db.pageSize }));
    if (plan !== null && io.exists(db.databasePath)) {
      const dfd = io.open(db.databasePath, 'readWrite');
      try {
        applyRollbackPlan(plan, db.reader(jfd), {
          writeAt: (data, offset) => {
            io.write(dfd, data, offset);
            observe?.page(data, offset);
          },
          truncate: (size) => {
            io.truncate(dfd, size);
            observe?.truncated(size);
          },
        });
        io.fsync(dfd);
      } finally {
        io.close(dfd);
      }
      rolledBack = true;
      db.ctx.log(`${db.name}: rolled back a hot journal (${plan.pages.size} pages)`);
    }
  } finally {
    io.close(jfd);
  }
  io.unlink(db.journalPath);
  return rolledBack;
}

/** ref §6.2 step 6b: committed WAL frames go into the database file; the WAL is emptied. */
function checkpointWAL(db: DB): boolean {
  const io = db.io;
  if (!io.exists(db.walPath) || !io.exists(db.databasePath)) return false;
  const wfd = io.open(db.walPath, 'readWrite');
  try {
    let scan: ReturnType<typeof scanWal> | null = null;
    try {
      scan = scanWal(db.reader(wfd));
    } catch (err) {
      if (!(err instanceof WalHeaderError)) throw err;
    }
    if (scan !== null && scan.mxFrame > 0) {
      const pageSize = scan.header.pageSize;
      const page = new Uint8Array(pageSize);
      const dfd = io.open(db.databasePath, 'readWrite');
      try {
        for (const [pgno, off] of scan.frameOffsets) {
          if (pgno > scan.nPage) continue;
          io.read(wfd, page, off + WAL_FRAME_HEADER_SIZE);
          io.write(dfd, page, (pgno - 1) * pageSize);
        }
        io.truncate(dfd, scan.nPage * pageSize);
        io.fsync(dfd);
      } finally {
        io.close(dfd);
      }
    }
    io.truncate(wfd, 0);
    io.fsync(wfd);
  } finally {
    io.close(wfd);
  }
  db.resetWalPages();
  db.wal.header = null;
  return true;
}

function loadChecksums(db: DB): void {
  if (db.pageSize === 0) return;
  const fd = db.io.open(db.databasePath, 'read');
  try {
    const cache = db.cache();
    cache.reset(db.pageSize);
    // Every page the file holds, not only the header's count: after a crash
    // the header may be from another transaction than pages the last LTX
    // file leaves untouched.
    const filePages = Math.floor(db.io.fileSize(fd) / db.pageSize);
    loadPageChecksums(cache, Math.max(db.pageN, filePages), (pgno, into) => db.io.read(fd, into, (pgno - 1) * db.pageSize));
  } finally {
    db.io.close(fd);
  }
}

/**
 * Writes every page of an LTX file into the database file and truncates it
 * to the file's commit size (ref §6.6, the parts a single node needs). The
 * file was verified first, so no page is written from a file that fails.
 */
function applyLTX(db: DB, path: string, sync = true): void {
  const io = db.io;
  if (isDeletion(db, path)) {
    removeDatabaseFiles(db);
    return;
  }
  const dfd = io.open(db.databasePath, 'create');
  try {
    let pageSize = 0;
    let commit = 0;
    const dec = new LTXDecoder({
      onHeader(h) {
        pageSize = h.pageSize;
        commit = h.commit;
        // A snapshot rewrites every page, so it may bring another page size
        // (a replica's apply of one was cut short by a crash).
        if (isSnapshot(h)) db.resetPageSize(pageSize);
        else db.setPageSize(pageSize);
      },
      onPage(pgno, data) {
        io.write(dfd, data, (pgno - 1) * pageSize);
        db.cache().computePage(pgno, data);
      },
    });
    const fd = io.open(path, 'read');
    try {
      forEachChunk(sequentialReader(db, fd), (chunk) => dec.push(chunk));
    } finally {
      io.close(fd);
    }
    dec.end();
    if (commit > 0) {
      io.truncate(dfd, commit * pageSize);
      db.cache().truncate(commit);
      db.pageN = commit;
      if (lockPgno(pageSize) <= commit) db.ctx.log(`${db.name}: database spans the lock page`);
    }
    if (sync) io.fsync(dfd);
  } finally {
    io.close(dfd);
  }
  readModeFromFile(db);
}

/** True for an LTX file with commit 0: the database was deleted. */
function isDeletion(db: DB, path: string): boolean {
  const fd = db.io.open(path, 'read');
  try {
    const header = new Uint8Array(16);
    if (db.io.read(fd, header, 0) < header.length) return false;
    return new DataView(header.buffer).getUint32(12) === 0;
  } finally {
    db.io.close(fd);
  }
}

function readModeFromFile(db: DB): void {
  const size = db.io.sizeOf(db.databasePath);
  if (size === null || size < DATABASE_HEADER_SIZE) return;
  const fd = db.io.open(db.databasePath, 'read');
  try {
    const buf = new Uint8Array(DATABASE_HEADER_SIZE);
    db.io.read(fd, buf, 0);
    if (hasDatabaseMagic(buf)) db.mode = parseDatabaseHeader(buf).mode;
  } finally {
    db.io.close(fd);
  }
}

/** Reads a file front to back through the store's I/O layer. */
function sequentialReader(db: DB, fd: number): SyncReader {
  let pos = 0;
  return {
    read(buf) {
      const n = db.io.read(fd, buf, pos);
      pos += n;
      return n;
    },
  };
}
