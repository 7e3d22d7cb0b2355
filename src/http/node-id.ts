/** Node ids on the wire: `%016X` text (upper-case hex), parsed like Go's strconv.ParseUint(s, 16, 64). */

const U64_MAX = 0xffff_ffff_ffff_ffffn;

export function formatNodeID(id: bigint): string {
  return id.toString(16).toUpperCase().padStart(16, '0');
}

/** Hex digits only (either case, no prefix, no sign); undefined if malformed or over 64 bits. */
export function parseNodeID(text: string): bigint | undefined {
  if (!/^[0-9a-fA-F]+$/.test(text)) return undefined;
  const v = BigInt(`0x${text}`);
  return v <= U64_MAX ? v : undefined;
}
