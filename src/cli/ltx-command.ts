/**
 * `litefs ltx dump FILE` and `litefs ltx verify FILE`: tools for operators
 * inspecting a data directory. Both decode in constant memory (page data is
 * never kept) and verify every checksum the format carries. `verify` also
 * applies the strict checks Go's decoder lacks (page order, bounds, lock
 * page), which every file LiteFS writes satisfies.
 */
import {
  LTXError,
  decodeFileSync,
  formatChecksum,
  formatTXID,
  formatTimestamp,
  isSnapshot,
  verifyFileSync,
  type Header,
  type Trailer,
} from '../ltx/index.js';

const USAGE = `usage: litefs ltx <command> FILE

commands:
  dump FILE     print the header, trailer, and each page number with its page checksum
  verify FILE   exit 0 if FILE is a valid LTX file; else print why and exit 1`;

export async function runLTXCommand(argv: string[]): Promise<number> {
  const [sub, file, ...extra] = argv;
  if (sub === undefined || file === undefined || extra.length > 0 || (sub !== 'dump' && sub !== 'verify')) {
    console.error(USAGE);
    return 2;
  }
  return sub === 'dump' ? dump(file) : verify(file);
}

function verify(file: string): number {
  try {
    verifyFileSync(file, { strict: true });
    return 0;
  } catch (err) {
    console.error(`${file}: ${describe(err)}`);
    return 1;
  }
}

function dump(file: string): number {
  let result;
  try {
    result = decodeFileSync(file);
  } catch (err) {
    console.error(`${file}: ${describe(err)}`);
    return 1;
  }
  const { header, trailer } = result;
  const lines = [...headerLines(header), '', ...trailerLines(trailer), '', `Pages (${result.pgnos.length}):`];
  for (let i = 0; i < result.pgnos.length; i++) {
    lines.push(`  ${String(result.pgnos[i]).padStart(10)}  ${formatChecksum(result.pageChecksums[i]!)}`);
  }
  console.log(lines.join('\n'));
  return 0;
}

function headerLines(h: Header): string[] {
  return [
    'Header',
    `  Version:           ${h.version}`,
    `  Flags:             0x${h.flags.toString(16).padStart(8, '0')}${h.flags & 1 ? ' (lz4)' : ''}`,
    `  Page size:         ${h.pageSize}`,
    `  Commit:            ${h.commit}`,
    `  Min TXID:          ${formatTXID(h.minTXID)} (${h.minTXID})`,
    `  Max TXID:          ${formatTXID(h.maxTXID)} (${h.maxTXID})`,
    `  Kind:              ${h.commit === 0 ? 'deletion' : isSnapshot(h) ? 'snapshot' : 'incremental'}`,
    `  Timestamp:         ${formatTimestamp(h.timestamp)} (${h.timestamp})`,
    `  Pre-apply:         ${formatChecksum(h.preApplyChecksum)}`,
    `  WAL offset:        ${h.walOffset}`,
    `  WAL size:          ${h.walSize}`,
    `  WAL salt:          ${hex32(h.walSalt1)} ${hex32(h.walSalt2)}`,
    `  Node ID:           ${h.nodeID.toString(16).toUpperCase().padStart(16, '0')}`,
  ];
}

function trailerLines(t: Trailer): string[] {
  return [
    'Trailer',
    `  Post-apply:        ${formatChecksum(t.postApplyChecksum)}`,
    `  File checksum:     ${formatChecksum(t.fileChecksum)}`,
  ];
}

function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

function describe(err: unknown): string {
  if (err instanceof LTXError) return `${err.message} [${err.rule}]`;
  if (err instanceof Error && 'code' in err) return err.message;
  return err instanceof Error ? err.message : String(err);
}
