/** Little helpers to write expected FUSE structs as readable hex. */

/** Concatenates hex fragments (spaces and | ignored) into bytes. */
export function hex(...parts: string[]): Buffer {
  return Buffer.from(parts.join('').replace(/[\s|]/g, ''), 'hex');
}

export function le32(v: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b.toString('hex');
}

export function le16(v: number): string {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b.toString('hex');
}

export function le64(v: bigint | number): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b.toString('hex');
}

/** A NUL-terminated string as hex. */
export function cstr(s: string): string {
  return Buffer.from(s + '\0').toString('hex');
}

/**
 * A whole request: fuse_in_header (len, opcode, unique, nodeid, uid, gid,
 * pid, total_extlen, padding) followed by `args`.
 */
export function request(opcode: number, args: Buffer, opts: { unique?: number; nodeid?: number; extlen?: number } = {}): Buffer {
  const len = 40 + args.length;
  const header = hex(
    le32(len),
    le32(opcode),
    le64(opts.unique ?? 0x1234),
    le64(opts.nodeid ?? 7),
    le32(1000), // uid
    le32(1001), // gid
    le32(4242), // pid
    le16(opts.extlen ?? 0),
    '0000',
  );
  return Buffer.concat([header, args]);
}
