/**
 * Fuzz target: decoding arbitrary bytes as a FUSE request gives a request or
 * a FuseDecodeError, never another exception, a hang, or an allocation sized
 * by an unchecked length field.
 */
import { Opcode } from '../../../src/fuse/abi.js';
import { FuseDecodeError } from '../../../src/fuse/errors.js';
import { RequestDecoder } from '../../../src/fuse/requests.js';
import type { FuzzTarget } from '../target.js';

function request(opcode: number, args: Buffer): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32LE(40 + args.length, 0);
  h.writeUInt32LE(opcode, 4);
  h.writeBigUInt64LE(2n, 8);
  h.writeBigUInt64LE(1n, 16);
  return Buffer.concat([h, args]);
}

function u32s(...v: number[]): Buffer {
  const b = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => b.writeUInt32LE(x >>> 0, i * 4));
  return b;
}

const name = (s: string): Buffer => Buffer.from(s + '\0');

const plain = new RequestDecoder();
const extended = new RequestDecoder();
extended.setxattrExt = true;

export const target: FuzzTarget = {
  name: 'fuse-request',
  seeds(): Buffer[] {
    return [
      request(Opcode.INIT, Buffer.concat([u32s(7, 45, 131072, 0x73fffffb, 0x1f), Buffer.alloc(44)])),
      request(Opcode.LOOKUP, name('x.db')),
      request(Opcode.GETATTR, Buffer.alloc(16)),
      request(Opcode.SETATTR, Buffer.alloc(88)),
      request(Opcode.SYMLINK, Buffer.concat([name('l'), name('/t')])),
      request(Opcode.MKNOD, Buffer.concat([u32s(0o100644, 0, 0o22, 0), name('n')])),
      request(Opcode.MKDIR, Buffer.concat([u32s(0o755, 0o22), name('d')])),
      request(Opcode.RENAME, Buffer.concat([Buffer.alloc(8), name('a'), name('b')])),
      request(Opcode.RENAME2, Buffer.concat([Buffer.alloc(16), name('a'), name('b')])),
      request(Opcode.LINK, Buffer.concat([Buffer.alloc(8), name('h')])),
      request(Opcode.OPEN, u32s(2, 0)),
      request(Opcode.READ, Buffer.concat([Buffer.alloc(16), u32s(4096, 0), Buffer.alloc(16)])),
      request(Opcode.WRITE, Buffer.concat([Buffer.alloc(16), u32s(4, 0), Buffer.alloc(16), Buffer.from('data')])),
      request(Opcode.RELEASE, Buffer.alloc(24)),
      request(Opcode.FSYNC, Buffer.alloc(16)),
      request(Opcode.SETXATTR, Buffer.concat([u32s(2, 0), name('user.k'), Buffer.from('vv')])),
      request(Opcode.GETXATTR, Buffer.concat([u32s(64, 0), name('user.k')])),
      request(Opcode.FLUSH, Buffer.alloc(24)),
      request(Opcode.SETLKW, Buffer.concat([Buffer.alloc(16), Buffer.alloc(16, 0xff), u32s(1, 1, 0, 0)])),
      request(Opcode.CREATE, Buffer.concat([u32s(0o102, 0o100644, 0o22, 0), name('c')])),
      request(Opcode.IOCTL, Buffer.concat([Buffer.alloc(24), u32s(2, 0), Buffer.from('ab')])),
      request(Opcode.NOTIFY_REPLY, Buffer.concat([Buffer.alloc(16), u32s(2, 0), Buffer.alloc(16), Buffer.from('ab')])),
      request(Opcode.BATCH_FORGET, Buffer.concat([u32s(2, 0), Buffer.alloc(32)])),
      request(Opcode.COPY_FILE_RANGE, Buffer.alloc(56)),
      request(Opcode.STATX, Buffer.alloc(24)),
      request(Opcode.INTERRUPT, Buffer.alloc(8)),
    ];
  },
  run(input: Buffer): void {
    const decoder = input.length > 0 && (input[input.length - 1]! & 1) === 1 ? extended : plain;
    decoder.decode(input, input.length);
  },
  isExpected(err: unknown): boolean {
    return err instanceof FuseDecodeError;
  },
};
