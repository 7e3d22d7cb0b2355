/**
 * `litefs restore (-path DIR | -url s3://…) -db NAME [-txid TXID | -timestamp TIME] -o FILE`
 * (new: LiteFS has no restore command): writes the database as it was at a
 * TXID, or at the last upload point at or before a time, from a backup
 * (`backup.path` of a file backup, `backup.url` of an S3 one) to FILE. Load
 * it into a cluster with `litefs import`.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { planRestore, restoreDatabase, type Restored, type RestoreTarget } from '../backup/restore.js';
import { S3BackupClient, parseS3URL } from '../backup/s3.js';
import { formatHex16, formatTimestamp, parseTXID, parseTimestamp } from '../ltx/index.js';
import { FlagError, flagUsage, parseFlags, type FlagSpec } from './flags.js';

const FLAGS: FlagSpec[] = [
  { name: 'path', kind: 'string', usage: 'the backup folder (backup.path of backup.type file)' },
  { name: 'url', kind: 'string', usage: 'the S3 backup (backup.url of backup.type s3; credentials from the AWS environment)' },
  { name: 'db', kind: 'string', usage: 'database name' },
  { name: 'txid', kind: 'string', usage: 'restore this TXID (16 hex digits, or a decimal number)' },
  { name: 'timestamp', kind: 'string', usage: 'restore the last commit at or before this RFC 3339 time' },
  { name: 'o', kind: 'string', usage: 'output database file (must not exist)' },
];

export async function runRestore(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, FLAGS);
  const usage = `usage: litefs restore (-path DIR | -url s3://BUCKET/PREFIX) -db NAME [-txid TXID | -timestamp TIME] -o FILE\n${flagUsage(FLAGS)}`;
  const path = flags.strings.get('path');
  const url = flags.strings.get('url');
  const db = flags.strings.get('db');
  const out = flags.strings.get('o');
  if (flags.positional.length > 0 || (path === undefined) === (url === undefined) || db === undefined || out === undefined) throw new FlagError(usage);
  const txidText = flags.strings.get('txid');
  const timeText = flags.strings.get('timestamp');
  if (txidText !== undefined && timeText !== undefined) throw new FlagError('-txid and -timestamp exclude each other');
  if (existsSync(out)) throw new Error(`${out} exists: restore never overwrites a file`);
  if (txidText !== undefined && !/^([0-9a-fA-F]{16}|[0-9]{1,19})$/.test(txidText)) throw new FlagError(`invalid -txid ${JSON.stringify(txidText)}: 16 hex digits or a decimal number`);
  const txid = txidText === undefined ? undefined : txidText.length === 16 ? parseTXID(txidText.toLowerCase()) : BigInt(txidText);
  const timestampMs = timeText === undefined ? undefined : Number(parseTimestamp(timeText));
  const target = { txid, timestampMs };
  const restored = path !== undefined ? restoreDatabase(resolve(path), db, target, resolve(out)) : await restoreFromS3(url!, db, target, resolve(out));
  process.stdout.write(
    `restored ${db} at TXID ${formatHex16(restored.txid)} (committed ${formatTimestamp(restored.timestampMs)}, checksum ${formatHex16(restored.postApplyChecksum)}) ` +
      `from ${restored.files.length} backup file${restored.files.length === 1 ? '' : 's'} to ${out}\n`,
  );
  return 0;
}

/**
 * Downloads the objects the restore reads (for a TXID or the newest: the
 * newest snapshot before it and the files after; for a time: all, whose
 * commit times are inside them) into a temporary folder, and restores from
 * there.
 */
async function restoreFromS3(url: string, db: string, target: RestoreTarget, out: string): Promise<Restored> {
  const client = new S3BackupClient(parseS3URL(url));
  const dir = mkdtempSync(join(tmpdir(), 'litefs-restore-'));
  try {
    const names = await client.files(db);
    if (names.length === 0) throw new Error(`no backup of ${db} in ${url}`);
    const needed = target.timestampMs === undefined ? planRestore(names, target, () => 0) : names;
    await client.download(db, dir, needed);
    return restoreDatabase(dir, db, target, out);
  } finally {
    client.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
