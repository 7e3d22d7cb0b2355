import { readFileSync } from 'node:fs';
import { fixture } from '../../helpers/paths.js';
import type { FuzzTarget } from '../target.js';
import { SqliteFormatError } from '../../../src/sqlite/errors.js';
import { bufferReader } from '../../../src/sqlite/positional.js';
import { buildWalHeader, encodeWalFrame, WAL_HEADER_SIZE } from '../../../src/sqlite/wal.js';
import { walChecksum } from '../../../src/sqlite/wal-checksum.js';
import { readWalTransaction, scanWal, WalReader } from '../../../src/sqlite/wal-reader.js';

/** A small WAL with 512-byte pages and big-endian checksums, so mutations reach several frames. */
function smallBigEndianWal(): Buffer {
  const { bytes, header } = buildWalHeader({ bigEndianChecksum: true, pageSize: 512, checkpointSeq: 1, salt1: 7, salt2: 9 });
  const parts = [bytes];
  let checksum = header.checksum;
  for (let i = 1; i <= 6; i++) {
    const frame = encodeWalFrame(header, checksum, 1 + (i % 3), i % 2 === 0 ? 3 : 0, Buffer.alloc(512, i));
    parts.push(frame.bytes);
    checksum = frame.checksum;
  }
  return Buffer.concat(parts);
}

/** Rewrites the header checksum so a mutated header still gets past it and frames are exercised. */
function withFixedHeaderChecksum(input: Buffer): Buffer {
  const out = Buffer.from(input);
  const bigEndian = out.readUInt32BE(0) === 0x377f0683;
  const sum = walChecksum(out.subarray(0, 24), bigEndian);
  out.writeUInt32BE(sum[0], 24);
  out.writeUInt32BE(sum[1], 28);
  return out;
}

function exercise(input: Buffer): void {
  const src = bufferReader(input);
  const scan = scanWal(src);
  // Walk the WAL again one transaction at a time, as CommitWAL does.
  let offset = WAL_HEADER_SIZE;
  let checksum = scan.header.checksum;
  for (let tx = readWalTransaction(src, scan.header, offset, checksum); tx !== null; tx = readWalTransaction(src, scan.header, offset, checksum)) {
    offset = tx.endOffset;
    checksum = tx.checksum;
  }
  if (offset !== scan.endOffset) throw new Error(`transaction walk ended at ${offset}, scan at ${scan.endOffset}`);
  const reader = WalReader.open(src);
  while (reader.next() !== null);
}

export const target: FuzzTarget = {
  name: 'sqlite-wal',
  seeds: () => [
    readFileSync(fixture('ltx', 'litefs-v0.5.11', 'testdata', 'wal-reader', 'ok', 'wal')),
    readFileSync(fixture('ltx', 'sqlite-generated', 'wal-crafted-le', 'craft.db-wal')),
    readFileSync(fixture('ltx', 'sqlite-generated', 'wal-live-with-shm', 'snap.db-wal')),
    smallBigEndianWal(),
  ],
  run(input) {
    try {
      exercise(input);
    } finally {
      if (input.length >= 32) exercise(withFixedHeaderChecksum(input));
    }
  },
  isExpected: (err) => err instanceof SqliteFormatError,
};
