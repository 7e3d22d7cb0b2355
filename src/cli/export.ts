/**
 * `litefs export -name DB [-url URL] PATH` (ref §12.1): downloads a
 * consistent image of DB from a node into PATH. Stale PATH, PATH-journal,
 * PATH-wal and PATH-shm are removed first (a leftover journal or WAL would
 * be applied to the new file by the next SQLite to open it); the download
 * goes to PATH.tmp, is fsynced, renamed over PATH, and the directory fsynced.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ApiClientError, NodeClient } from '../http/client.js';
import { FlagError, flagUsage, parseFlags, type FlagSpec } from './flags.js';

const FLAGS: FlagSpec[] = [
  { name: 'url', kind: 'string', usage: 'LiteFS API URL', default: 'http://localhost:20202' },
  { name: 'name', kind: 'string', usage: 'database name' },
];

/** Progress lines on stderr at most this often for large downloads. */
const PROGRESS_EVERY_BYTES = 64 << 20;

export class DatabaseNotFoundError extends Error {
  override readonly name = 'DatabaseNotFoundError';
}

export async function runExport(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, FLAGS);
  const name = flags.strings.get('name') ?? '';
  const path = flags.positional[0];
  if (name === '' || path === undefined || flags.positional.length > 1) {
    throw new FlagError(`usage: litefs export -name DB [-url URL] PATH\n${flagUsage(FLAGS)}`);
  }
  const url = flags.strings.get('url') ?? 'http://localhost:20202';
  const started = Date.now();
  for (const suffix of ['', '-journal', '-wal', '-shm']) rmSync(path + suffix, { force: true });

  const client = new NodeClient(url);
  let body: AsyncIterable<Buffer>;
  try {
    body = await client.export(name, AbortSignal.timeout(24 * 3600_000));
  } catch (err) {
    client.close();
    if (err instanceof ApiClientError && err.status === 404) throw new DatabaseNotFoundError('database not found');
    throw err;
  }
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    await download(body, fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    client.close();
    throw err;
  }
  closeSync(fd);
  client.close();
  renameSync(tmp, path);
  fsyncDir(dirname(path));
  console.log(`Export of database ${JSON.stringify(name)} in ${Date.now() - started}ms`);
  return 0;
}

/** Writes the body to `fd` and fsyncs it, with progress on stderr for large databases. */
async function download(body: AsyncIterable<Buffer>, fd: number): Promise<void> {
  let size = 0;
  let nextReport = PROGRESS_EVERY_BYTES;
  for await (const chunk of body) {
    writeAll(fd, chunk);
    size += chunk.length;
    if (size >= nextReport) {
      console.error(`exported ${(size / (1 << 20)).toFixed(0)} MiB`);
      nextReport += PROGRESS_EVERY_BYTES;
    }
  }
  fsyncSync(fd);
}

function fsyncDir(path: string): void {
  const dir = openSync(path, 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done);
}
