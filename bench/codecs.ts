/**
 * Codec throughput on 4 KiB pages, each next to Buffer.copy of the same bytes
 * on this machine in the same run (the ratio's denominator): CRC-64, page and
 * database checksums, LTX encode and decode, plain and LZ4.
 */
import {
  DatabaseChecksum,
  LTXDecoder,
  LTXEncoder,
  checksumPageInto,
  crc64,
  makeHeader,
  type ByteSink,
} from '../src/ltx/index.js';
import { formatTable, measure, type Throughput } from './measure.js';

const PAGE = 4096;
const PAGES = 256; // 1 MiB of pages per call: large enough to amortise call overhead

function makePages(): Buffer[] {
  // Realistic-ish SQLite pages: some structure (compressible) and some noise.
  const pages: Buffer[] = [];
  let x = 12345;
  for (let p = 0; p < PAGES; p++) {
    const b = Buffer.alloc(PAGE);
    for (let i = 0; i < PAGE; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      b[i] = i % 64 < 40 ? (x >>> 24) & 0xff : (i * 7) & 0xff;
    }
    pages.push(b);
  }
  return pages;
}

const NULL_SINK: ByteSink = { write: () => undefined };

class CaptureSink implements ByteSink {
  chunks: Uint8Array[] = [];
  write(chunk: Uint8Array): void {
    this.chunks.push(Uint8Array.from(chunk));
  }
}

function encode(pages: Buffer[], flags: number, sink: ByteSink): void {
  const enc = new LTXEncoder(sink);
  enc.encodeHeader(makeHeader({ flags, pageSize: PAGE, commit: PAGES, minTXID: 1n, maxTXID: 1n, timestamp: 1n }));
  const acc = new DatabaseChecksum(PAGE);
  for (let i = 0; i < pages.length; i++) {
    enc.encodePage(i + 1, pages[i]!);
    acc.addPage(i + 1, pages[i]!);
  }
  enc.setPostApplyChecksum(acc.value);
  enc.close();
}

export function runCodecBench(budgetMs: number): string {
  const pages = makePages();
  const total = PAGE * PAGES;
  const flat = Buffer.concat(pages);
  const copyDst = Buffer.alloc(total);
  const sums = new Uint32Array(2 * PAGES);

  const baseline = measure('Buffer.copy (baseline)', total, () => {
    for (let i = 0; i < PAGES; i++) pages[i]!.copy(copyDst, i * PAGE);
  }, budgetMs);

  const results: Throughput[] = [
    measure('CRC-64/GO-ISO, 1 MiB buffer', total, () => void crc64(flat), budgetMs),
    measure('page checksum (4 KiB pages)', total, () => {
      for (let i = 0; i < PAGES; i++) checksumPageInto(i + 1, pages[i]!, sums, i);
    }, budgetMs),
    measure('database checksum (4 KiB pages)', total, () => {
      const acc = new DatabaseChecksum(PAGE);
      for (let i = 0; i < PAGES; i++) acc.addPage(i + 1, pages[i]!);
      void acc.value;
    }, budgetMs),
    measure('LTX encode, uncompressed', total, () => encode(pages, 0, NULL_SINK), budgetMs),
    measure('LTX encode, LZ4', total, () => encode(pages, 1, NULL_SINK), budgetMs),
  ];
  for (const flags of [0, 1]) {
    const cap = new CaptureSink();
    encode(pages, flags, cap);
    const file = Buffer.concat(cap.chunks);
    results.push(
      measure(`LTX decode + verify, ${flags ? 'LZ4' : 'uncompressed'} (${(file.length / 1024).toFixed(0)} KiB file)`, total, () => {
        const dec = new LTXDecoder({});
        dec.push(file);
        dec.end();
      }, budgetMs),
    );
  }

  const rows = [['workload (1 MiB of 4 KiB pages per call)', 'MB/s', 'ratio to Buffer.copy']];
  rows.push([baseline.name, baseline.mbPerSec.toFixed(0), '1']);
  for (const r of results) rows.push([r.name, r.mbPerSec.toFixed(0), (r.mbPerSec / baseline.mbPerSec).toFixed(3)]);
  const pageChecksum = results[1]!;
  const gib = 1024 ** 3 / 1e6;
  return [
    formatTable(rows),
    '',
    `page checksumming: ${pageChecksum.mbPerSec.toFixed(0)} MB/s on one core ` +
      `(target >= 500 MB/s): a 1 GiB database verifies in ~${(gib / pageChecksum.mbPerSec).toFixed(1)} s`,
  ].join('\n');
}
