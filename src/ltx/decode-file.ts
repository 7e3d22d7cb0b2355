/**
 * Synchronous helpers over the streaming decoder for files on disk (FUSE
 * thread, start-up recovery) and in memory. All run in constant memory: page
 * data is never accumulated.
 */
import { lockPgno } from './checksum.js';
import { LTXDecoder, type DecodeOptions, type DecodeSummary } from './decoder.js';
import { LTXDecodeError } from './errors.js';
import { isSnapshot } from './header.js';
import type { ByteSink } from './sink.js';
import { type SyncSource, forEachChunk } from './source.js';

export interface FileDecodeResult extends DecodeSummary {
  /** Page numbers in file order. */
  pgnos: number[];
  /** ChecksumPage of each page, parallel to `pgnos`. */
  pageChecksums: bigint[];
}

/**
 * Decodes and verifies an LTX file, returning its header, trailer, page
 * numbers and page checksums (not the page data).
 */
export function decodeFileSync(source: SyncSource, opts: DecodeOptions = {}): FileDecodeResult {
  const pgnos: number[] = [];
  const pageChecksums: bigint[] = [];
  const dec: LTXDecoder = new LTXDecoder(
    {
      onPage(pgno) {
        pgnos.push(pgno);
        pageChecksums.push(dec.pageChecksum);
      },
    },
    { ...opts, pageChecksums: true },
  );
  forEachChunk(source, (chunk) => dec.push(chunk));
  return { ...dec.end(), pgnos, pageChecksums };
}

/** Go's Decoder.Verify: decodes everything, checks every checksum, discards the data. */
export function verifyFileSync(source: SyncSource, opts: DecodeOptions = {}): DecodeSummary {
  const dec = new LTXDecoder({}, opts);
  forEachChunk(source, (chunk) => dec.push(chunk));
  return dec.end();
}

/**
 * Go's DecodeDatabaseTo: writes a snapshot LTX file out as a SQLite database
 * image (pages 1..Commit, PageSize zero bytes for the lock page). Requires a
 * snapshot whose pages are exactly 1..Commit in order. Bytes reach the sink
 * before the file checksum is verified at the end, as in Go: write to a
 * temporary file and rename it only after this returns.
 * For a snapshot the decoder has checked the pages against the trailer's
 * post-apply checksum, so the image written has that database checksum.
 */
export function decodeDatabaseTo(
  source: SyncSource,
  sink: ByteSink,
  opts: DecodeOptions = {},
): DecodeSummary {
  let expected = 1;
  let lock = 0;
  let commit = 0;
  let zeroPage = new Uint8Array(0);
  const dec = new LTXDecoder(
    {
      onHeader(h) {
        if (!isSnapshot(h)) {
          throw new LTXDecodeError('not-snapshot', 'cannot decode non-snapshot LTX file to SQLite database');
        }
        lock = lockPgno(h.pageSize);
        commit = h.commit;
        zeroPage = new Uint8Array(h.pageSize);
      },
      onPage(pgno, data) {
        if (expected === lock && expected <= commit) {
          sink.write(zeroPage);
          expected++;
        }
        if (pgno !== expected || pgno > commit) {
          throw new LTXDecodeError('unexpected-pgno', `unexpected pgno while decoding page: read ${pgno}, expected ${expected}`);
        }
        sink.write(data);
        expected++;
      },
    },
    opts,
  );
  forEachChunk(source, (chunk) => dec.push(chunk));
  const summary = dec.end();
  if (expected === lock && expected <= commit) {
    sink.write(zeroPage);
    expected++;
  }
  if (expected !== commit + 1) {
    throw new LTXDecodeError('unexpected-pgno', `unexpected pgno while decoding page: read 0, expected ${expected}`);
  }
  return summary;
}
