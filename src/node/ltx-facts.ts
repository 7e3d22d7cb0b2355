/**
 * What the main thread learns from the data directory without asking the
 * FUSE thread: read-only looks at durable LTX files. Used for positions at
 * start-up and for the header fields (page size, commit, timestamp) that a
 * `tx` StoreEvent does not carry.
 */
import { closeSync, fstatSync, openSync, readSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { HEADER_SIZE, TRAILER_SIZE, unmarshalHeader, unmarshalTrailer, type Header } from '../ltx/index.js';

export interface LTXFacts {
  readonly header: Header;
  readonly postApplyChecksum: bigint;
}

const LTX_NAME = /^[0-9a-f]{16}-[0-9a-f]{16}\.ltx$/;

export function ltxDir(dataDir: string, db: string): string {
  return join(dataDir, 'dbs', db, 'ltx');
}

export function ltxFileName(txid: string): string {
  return `${txid}-${txid}.ltx`;
}

/** Header and post-apply checksum of one LTX file; undefined if it is missing or too short. */
export function readLTXFacts(path: string): LTXFacts | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const size = fstatSync(fd).size;
    if (size < HEADER_SIZE + TRAILER_SIZE) return undefined;
    const head = Buffer.alloc(HEADER_SIZE);
    const tail = Buffer.alloc(TRAILER_SIZE);
    readSync(fd, head, 0, HEADER_SIZE, 0);
    readSync(fd, tail, 0, TRAILER_SIZE, size - TRAILER_SIZE);
    return { header: unmarshalHeader(head), postApplyChecksum: unmarshalTrailer(tail).postApplyChecksum };
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Names of the databases under `<data>/dbs`. */
export function databaseNames(dataDir: string): string[] {
  try {
    return readdirSync(join(dataDir, 'dbs'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

/** Facts of the newest LTX file of a database (file names sort by TXID). */
export function latestLTXFacts(dataDir: string, db: string): LTXFacts | undefined {
  let names: string[];
  try {
    names = readdirSync(ltxDir(dataDir, db)).filter((n) => LTX_NAME.test(n)).sort();
  } catch {
    return undefined;
  }
  const last = names.at(-1);
  return last === undefined ? undefined : readLTXFacts(join(ltxDir(dataDir, db), last));
}
