/**
 * Merges contiguous LTX files into one (formats.md A.10, ltx v0.3.13's
 * Compactor), streaming: inputs are read page by page in lock step, so
 * memory is one page frame (plus LZ4 buffers) per input.
 *
 * Go quirk deliberately not copied: in v0.3.13 a header decode error makes
 * Compact return nil with nothing written (fixed upstream in #80). Here it
 * throws the decoder's typed LTXDecodeError, naming the input's index.
 */
import { closeSync, openSync } from 'node:fs';
import { LTXEncoder } from './encoder.js';
import { LTXCompactError, LTXDecodeError } from './errors.js';
import { type Header, makeHeader } from './header.js';
import { LTXPageReader } from './page-reader.js';
import type { ByteSink } from './sink.js';
import { type SyncSource, fdReader } from './source.js';
import type { Trailer } from './trailer.js';
import { formatHex16 } from './types.js';

export interface CompactOptions {
  /** Output header flags (default 0; LiteFS passes 1 when `data.compress` is on). */
  headerFlags?: number;
  /** Skip the prev.MaxTXID + 1 === next.MinTXID check. */
  allowNonContiguousTXIDs?: boolean;
}

export interface CompactResult {
  header: Header;
  trailer: Trailer;
}

interface Input {
  reader: LTXPageReader;
  header: Header;
  /** Current page number, or 0 when the input has no more pages. */
  pgno: number;
}

/** Compacts `sources` (any order) into one LTX file written to `sink`. */
export function compact(sink: ByteSink, sources: SyncSource[], opts: CompactOptions = {}): CompactResult {
  if (sources.length === 0) throw new LTXCompactError('no-inputs', 'at least one input reader required');
  const opened: number[] = [];
  try {
    const inputs: Input[] = sources.map((src, i) => {
      let reader: LTXPageReader;
      if (src instanceof Uint8Array) reader = new LTXPageReader(src);
      else if (typeof src === 'number') reader = new LTXPageReader(fdReader(src));
      else if (typeof src === 'string') {
        const fd = openSync(src, 'r');
        opened.push(fd);
        reader = new LTXPageReader(fdReader(fd));
      } else reader = new LTXPageReader(src);
      let header: Header;
      try {
        header = reader.readHeader();
      } catch (e) {
        if (e instanceof LTXDecodeError) {
          throw new LTXDecodeError(e.rule, `decode input header ${i}: ${e.message}`, { cause: e });
        }
        throw e;
      }
      return { reader, header, pgno: 0 };
    });
    return merge(sink, inputs, opts);
  } finally {
    for (const fd of opened) closeSync(fd);
  }
}

function merge(sink: ByteSink, inputs: Input[], opts: CompactOptions): CompactResult {
  // Go sorts with `a.MinTXID < b.MaxTXID`, i.e. ascending for contiguous,
  // non-overlapping ranges; a stable sort by MinTXID gives the same order.
  inputs.sort((a, b) => (a.header.minTXID < b.header.minTXID ? -1 : a.header.minTXID > b.header.minTXID ? 1 : 0));
  for (let i = 1; i < inputs.length; i++) {
    const prev = inputs[i - 1].header;
    const next = inputs[i].header;
    if (prev.pageSize !== next.pageSize) {
      throw new LTXCompactError(
        'mismatched-page-sizes',
        `input files have mismatched page sizes: ${prev.pageSize} != ${next.pageSize}`,
      );
    }
    if (!opts.allowNonContiguousTXIDs && prev.maxTXID + 1n !== next.minTXID) {
      throw new LTXCompactError(
        'non-contiguous-txids',
        `non-contiguous transaction ids in input files: (${formatHex16(prev.minTXID)},${formatHex16(prev.maxTXID)}) -> (${formatHex16(next.minTXID)},${formatHex16(next.maxTXID)})`,
      );
    }
  }

  const first = inputs[0].header;
  const last = inputs[inputs.length - 1].header;
  const header = makeHeader({
    flags: opts.headerFlags ?? 0,
    pageSize: first.pageSize,
    commit: last.commit,
    minTXID: first.minTXID,
    maxTXID: last.maxTXID,
    timestamp: last.timestamp,
    preApplyChecksum: first.preApplyChecksum,
  });
  const enc = new LTXEncoder(sink);
  enc.encodeHeader(header);

  for (const input of inputs) input.pgno = input.reader.nextPage() ? input.reader.pgno : 0;
  for (;;) {
    // The lowest pending page number; its latest copy (highest index) wins.
    let pgno = 0;
    let winner = -1;
    for (let i = 0; i < inputs.length; i++) {
      const p = inputs[i].pgno;
      if (p !== 0 && (pgno === 0 || p <= pgno)) {
        pgno = p;
        winner = i;
      }
    }
    if (winner < 0) break;
    if (pgno <= header.commit) enc.encodePage(pgno, inputs[winner].reader.data);
    for (const input of inputs) {
      if (input.pgno === pgno) input.pgno = input.reader.nextPage() ? input.reader.pgno : 0;
    }
  }

  // Reading each input to its end verifies its file checksum.
  let lastTrailer: Trailer | null = null;
  for (const input of inputs) lastTrailer = input.reader.finish().trailer;
  enc.setPostApplyChecksum((lastTrailer as Trailer).postApplyChecksum);
  enc.close();
  return { header: enc.header, trailer: enc.trailer };
}
