/** Shared helpers for the LTX tests: fixture paths and the README's page-content definitions. */
import { readFileSync } from 'node:fs';
import { fixture } from '../../helpers/paths.js';

export function ltxFixture(dir: string, name: string): string {
  return fixture('ltx', dir, name);
}

export function gen(name: string): string {
  return ltxFixture('ltx-v0.3.13-generated', name);
}

export function crafted(name: string): string {
  return ltxFixture('ltx-python-crafted-lz4-variants', name);
}

export const LITEFS_LTX = fixture(
  'ltx',
  'litefs-v0.5.11',
  'testdata',
  'store',
  'open-and-write-snapshot',
  'dbs',
  'sqlite.db',
  'ltx',
  '000000000000000d-000000000000000d.ltx',
);
export const LITEFS_DB = fixture('ltx', 'litefs-v0.5.11', 'testdata', 'store', 'open-and-write-snapshot', 'dbs', 'sqlite.db', 'database');

export function read(path: string): Buffer {
  return readFileSync(path);
}

/** `n` bytes of value `b`. */
export function fill(n: number, b: number): Uint8Array {
  return new Uint8Array(n).fill(b);
}

/** pattern(n): 4096 bytes with b[j] = (j/16 + n) & 0xFF. */
export function pattern(n: number): Uint8Array {
  const out = new Uint8Array(4096);
  for (let j = 0; j < 4096; j++) out[j] = (Math.floor(j / 16) + n) & 0xff;
  return out;
}

/** lcg(n): x <- x*1103515245 + 12345 mod 2^32 from x = n, each byte x >> 24 after the update. */
export function lcg(n: number): Uint8Array {
  const out = new Uint8Array(4096);
  let x = n >>> 0;
  for (let j = 0; j < 4096; j++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[j] = x >>> 24;
  }
  return out;
}

export function hex(v: bigint): string {
  return v.toString(16).padStart(16, '0');
}

/** Block list of the LZ4 frame starting at `offset`: [stored size, stored raw?] per data block. */
export function lz4Blocks(file: Uint8Array, offset = 100): Array<[number, boolean]> {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const flg = file[offset + 4];
  let p = offset + 7 + (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0);
  const blocks: Array<[number, boolean]> = [];
  for (;;) {
    const word = v.getUint32(p, true);
    p += 4;
    if (word === 0) break;
    const size = word & 0x7fffffff;
    blocks.push([size, (word & 0x80000000) !== 0]);
    p += size + (flg & 0x10 ? 4 : 0);
  }
  return blocks;
}
