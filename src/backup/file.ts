/**
 * `backup.type: file`: a folder holding one sub-folder per database with
 * its LTX files under their usual names (`<min>-<max>.ltx`), as LiteFS's
 * FileBackupClient (ref §11.3). Files are never removed, so the folder can
 * restore any TXID it has seen (src/backup/restore.ts). A file lands only
 * verified and durably: written as `.tmp`, fsynced, checked in full,
 * renamed, the folder fsynced.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Pos, ZERO_POS, formatFilename, parseFilename, posEqual, verifyFileSync } from '../ltx/index.js';
import { type BackupClient, checkDatabaseName, checkJoinsChain } from './client.js';

export class FileBackupClient implements BackupClient {
  readonly root: string;
  /** One write at a time: a chain check and its rename must not interleave. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(path: string) {
    this.root = isAbsolute(path) ? path : resolve(path);
    mkdirSync(this.root, { recursive: true });
  }

  get url(): string {
    return pathToFileURL(this.root).href;
  }

  async posMap(): Promise<Map<string, Pos>> {
    const out = new Map<string, Pos>();
    for (const entry of readdirSync(this.root, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const pos = this.position(entry.name);
      if (pos.txid !== 0n) out.set(entry.name, pos);
    }
    return out;
  }

  /**
   * The position of the file with the greatest max TXID, fully verified;
   * zero when there is none. (Not the greatest name: a re-base snapshot
   * `1-N` sorts before the older chain's files.)
   */
  position(name: string): Pos {
    let newest: string | undefined;
    let newestTXID = 0n;
    for (const file of ltxNames(join(this.root, name))) {
      const { maxTXID } = parseFilename(file);
      if (maxTXID > newestTXID) [newest, newestTXID] = [file, maxTXID];
    }
    if (newest === undefined) return ZERO_POS;
    const summary = verifyFileSync(join(this.root, name, newest));
    return { txid: summary.header.maxTXID, postApplyChecksum: summary.trailer.postApplyChecksum };
  }

  writeTx(name: string, body: AsyncIterable<Uint8Array>): Promise<bigint> {
    const run = this.queue.then(() => this.write(name, body));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(name: string, body: AsyncIterable<Uint8Array>): Promise<bigint> {
    checkDatabaseName(name);
    const dir = join(this.root, name);
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, `incoming-${process.pid}.ltx.tmp`);
    const fd = openSync(tmp, 'w');
    try {
      for await (const chunk of body) writeSync(fd, chunk);
      fsyncSync(fd);
    } catch (err) {
      closeSync(fd);
      rmSync(tmp, { force: true });
      throw err;
    }
    closeSync(fd);
    try {
      const { header } = verifyFileSync(tmp);
      const at = this.position(name);
      checkJoinsChain(name, header, at);
      renameSync(tmp, join(dir, formatFilename(header.minTXID, header.maxTXID)));
      fsyncDir(dir);
      if (posEqual(at, ZERO_POS)) fsyncDir(this.root);
      return header.maxTXID;
    } finally {
      rmSync(tmp, { force: true });
    }
  }
}

/** The database folder's LTX file names, sorted (the hex names sort by TXID). */
export function ltxNames(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter((n) => {
      try {
        parseFilename(n);
        return true;
      } catch {
        return false;
      }
    })
    .sort();
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
