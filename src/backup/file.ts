/**
 * `backup.type: file`: a folder holding one sub-folder per database with
 * its LTX files under their usual names (`<min>-<max>.ltx`), as LiteFS's
 * FileBackupClient (ref §11.3). Files are never removed, so the folder can
 * restore any TXID it has seen (src/backup/restore.ts). A file lands only
 * verified and durably: written as `.tmp`, fsynced, checked in full,
 * renamed, the folder fsynced.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Pos, ZERO_POS, formatFilename, parseFilename, posEqual, verifyFileSync } from '../ltx/index.js';
import { type BackupClient, checkDatabaseName, checkJoinsChain } from './client.js';

export class FileBackupClient implements BackupClient {
  readonly root: string;
  /** One write at a time: a chain check and its rename must not interleave. */
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * Each database's position as this client last found or wrote it, so an
   * upload need not list a folder that gains a file a second (only the
   * uploading primary writes: posMap, every 10 s, looks again).
   */
  private readonly known = new Map<string, Pos>();
  /** Positions of files already verified, by path (files never change). */
  private readonly verified = new Map<string, Pos>();

  constructor(path: string) {
    this.root = isAbsolute(path) ? path : resolve(path);
    mkdirSync(this.root, { recursive: true });
  }

  get url(): string {
    return pathToFileURL(this.root).href;
  }

  async posMap(): Promise<Map<string, Pos>> {
    const out = new Map<string, Pos>();
    for (const entry of await readdir(this.root, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const pos = this.positionIn(await readdir(join(this.root, entry.name)), entry.name);
      this.known.set(entry.name, pos);
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
    return this.positionIn(ltxNames(join(this.root, name)), name);
  }

  private positionIn(files: readonly string[], name: string): Pos {
    let newest: string | undefined;
    let newestTXID = 0n;
    for (const file of files) {
      let maxTXID: bigint;
      try {
        maxTXID = parseFilename(file).maxTXID;
      } catch {
        continue;
      }
      if (maxTXID > newestTXID) [newest, newestTXID] = [file, maxTXID];
    }
    if (newest === undefined) return ZERO_POS;
    const path = join(this.root, name, newest);
    let pos = this.verified.get(path);
    if (pos === undefined) {
      const summary = verifyFileSync(path);
      pos = { txid: summary.header.maxTXID, postApplyChecksum: summary.trailer.postApplyChecksum };
      this.verified.set(path, pos);
    }
    return pos;
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
      const { header, trailer } = verifyFileSync(tmp);
      const at = this.known.get(name) ?? this.position(name);
      checkJoinsChain(name, header, at);
      const file = join(dir, formatFilename(header.minTXID, header.maxTXID));
      renameSync(tmp, file);
      fsyncDir(dir);
      if (posEqual(at, ZERO_POS)) fsyncDir(this.root);
      const pos = { txid: header.maxTXID, postApplyChecksum: trailer.postApplyChecksum };
      this.known.set(name, pos);
      this.verified.set(file, pos);
      return header.maxTXID;
    } catch (err) {
      // Whatever went wrong, look at the folder again next time.
      this.known.delete(name);
      throw err;
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
