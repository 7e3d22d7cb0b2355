/**
 * The session's dispatch, driven by a scripted device: INIT negotiation,
 * error mapping, no-reply opcodes, the wake-up LOOKUP, deferred SETLKW and
 * INTERRUPT, READ into the reply buffer, message draining.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { FUSE_KERNEL_MINOR_VERSION, InitFlag, Opcode } from '../../../src/fuse/abi.js';
import { Errno, FuseError } from '../../../src/fuse/errors.js';
import { DEFERRED, type FuseHandler } from '../../../src/fuse/handler.js';
import { DEFAULT_INIT_FLAGS, FuseSession } from '../../../src/fuse/session.js';
import { cstr, hex, le32, le64, request } from './bytes.js';
import { ScriptedDevice } from './scripted-device.js';

function init(unique = 1, minor = 45, flags = 0x73fffffb): Buffer {
  return request(Opcode.INIT, hex(le32(7), le32(minor), le32(131072), le32(flags), le32(0), '00'.repeat(44)), { unique, nodeid: 0 });
}

function serve(handler: FuseHandler, dev: ScriptedDevice, extra: Partial<ConstructorParameters<typeof FuseSession>[0]> = {}): FuseSession {
  const s = new FuseSession({ fd: -1, device: dev, handler, maxWrite: 128 * 1024, ...extra });
  s.run();
  return s;
}

describe('FuseSession', () => {
  test('INIT: minor = min(kernel, ours), flags = offered ∩ wanted, max_write and max_pages', () => {
    const dev = new ScriptedDevice().push(init(1, 45, 0x73fffffb));
    let seen = 0;
    serve({ init: (_s, conn) => (seen = conn.flags) }, dev);
    const p = dev.replyTo(1).payload;
    assert.equal(p.length, 64);
    assert.equal(p.readUInt32LE(0), 7);
    assert.equal(p.readUInt32LE(4), FUSE_KERNEL_MINOR_VERSION);
    const flags = p.readUInt32LE(12);
    assert.equal(flags, (0x73fffffb & DEFAULT_INIT_FLAGS) >>> 0);
    assert.equal(flags & InitFlag.WRITEBACK_CACHE, 0);
    assert.equal(flags & InitFlag.ASYNC_READ, 0);
    assert.ok((flags & InitFlag.POSIX_LOCKS) !== 0 && (flags & InitFlag.EXPLICIT_INVAL_DATA) !== 0);
    assert.equal(p.readUInt32LE(20), 128 * 1024); // max_write
    assert.equal(p.readUInt16LE(28), 32); // max_pages = 128 KiB / 4 KiB
    assert.equal(seen, flags);
  });

  test('INIT from an older kernel answers its minor and only the flags it offered', () => {
    const dev = new ScriptedDevice().push(init(1, 31, InitFlag.POSIX_LOCKS | InitFlag.ASYNC_READ));
    serve({}, dev);
    const p = dev.replyTo(1).payload;
    assert.equal(p.readUInt32LE(4), 31);
    assert.equal(p.readUInt32LE(12), InitFlag.POSIX_LOCKS);
  });

  test('missing handlers and unknown opcodes answer ENOSYS; FORGET, BATCH_FORGET, INTERRUPT get no reply', () => {
    const forgotten: [number, number][] = [];
    const dev = new ScriptedDevice().push(
      init(),
      request(Opcode.GETXATTR, hex(le32(0), le32(0), cstr('user.x')), { unique: 2 }),
      request(999, Buffer.alloc(0), { unique: 4 }),
      request(Opcode.IOCTL, Buffer.alloc(32), { unique: 6 }),
      request(Opcode.FORGET, hex(le64(2)), { unique: 8, nodeid: 5 }),
      request(Opcode.BATCH_FORGET, hex(le32(2), le32(0), le64(6), le64(1), le64(7), le64(3)), { unique: 10 }),
      request(Opcode.INTERRUPT, hex(le64(77)), { unique: 12 }),
    );
    serve({ forget: (ino, n) => forgotten.push([ino, n]) }, dev);
    for (const u of [2, 4, 6]) assert.equal(dev.replyTo(u).error, -Errno.ENOSYS, `unique ${u}`);
    for (const u of [8, 10, 12]) assert.equal(dev.hasReply(u), false, `unique ${u}`);
    assert.deepEqual(forgotten, [[5, 2], [6, 1], [7, 3]]);
  });

  test('errors: FuseError keeps its errno, Node errors map by errno, anything else is EIO', () => {
    const errs: unknown[] = [new FuseError(Errno.EACCES), Object.assign(new Error('x'), { errno: -2, code: 'ENOENT' }), new TypeError('bug')];
    let i = 0;
    const dev = new ScriptedDevice().push(init(), ...[2, 4, 6].map((u) => request(Opcode.UNLINK, hex(cstr('f')), { unique: u })));
    serve({ unlink: () => { throw errs[i++]; } }, dev);
    assert.deepEqual([2, 4, 6].map((u) => dev.replyTo(u).error), [-Errno.EACCES, -Errno.ENOENT, -Errno.EIO]);
  });

  test('LOOKUP: nodeid 0 with a timeout is a cached negative entry; without one it is ENOENT', () => {
    const dev = new ScriptedDevice().push(
      init(),
      request(Opcode.LOOKUP, hex(cstr('neg')), { unique: 2, nodeid: 1 }),
      request(Opcode.LOOKUP, hex(cstr('none')), { unique: 4, nodeid: 1 }),
    );
    serve({ lookup: (r, out) => { if (r.name === 'neg') out.entryValid = 5; } }, dev);
    const neg = dev.replyTo(2);
    assert.equal(neg.error, 0);
    assert.equal(neg.payload.length, 128);
    assert.equal(neg.payload.readBigUInt64LE(0), 0n);
    assert.equal(neg.payload.readBigUInt64LE(16), 5n);
    assert.equal(dev.replyTo(4).error, -Errno.ENOENT);
  });

  test('READ: the handler fills the reply buffer directly; the reply carries exactly the bytes read', () => {
    const dev = new ScriptedDevice().push(init(), request(Opcode.READ, hex(le64(3), le64(0), le32(4096), le32(0), le64(0), le32(0), le32(0)), { unique: 2 }));
    serve({ read: (_r, buf, off) => buf.write('hello', off) }, dev);
    assert.equal(dev.replyTo(2).len, 21);
    assert.equal(dev.replyTo(2).payload.toString(), 'hello');
  });

  test('GETLK without a conflict echoes the asked range with F_UNLCK', () => {
    const dev = new ScriptedDevice().push(init(), request(Opcode.GETLK, hex(le64(3), le64(9), le64(10), le64(0x7fffffffffffffffn), le32(1), le32(5), le32(0), le32(0)), { unique: 2 }));
    serve({ getlk: () => {} }, dev);
    assert.equal(dev.replyTo(2).payload.toString('hex'), hex(le64(10), le64(0x7fffffffffffffffn), le32(2), le32(0)).toString('hex'));
  });

  test('a deferred SETLKW gets no reply until completed; INTERRUPT answers it EINTR once', () => {
    const lk = (unique: number, op: number): Buffer => request(op, hex(le64(3), le64(9), le64(0), le64(0), le32(1), le32(5), le32(0), le32(0)), { unique });
    const dev = new ScriptedDevice().push(
      init(),
      lk(2, Opcode.SETLKW),
      lk(4, Opcode.SETLKW),
      request(Opcode.INTERRUPT, hex(le64(2)), { unique: 6 }),
      request(Opcode.INTERRUPT, hex(le64(2)), { unique: 8 }),
      lk(10, Opcode.SETLK),
    );
    let session: FuseSession | undefined;
    const interrupted: number[] = [];
    serve(
      {
        init: (s) => (session = s),
        setlk: (r) => {
          if (r.header.unique === 10) {
            session!.complete(4, 0); // the lock SETLKW 4 waited for is free now
            return;
          }
          return DEFERRED;
        },
        interrupt: (u) => (interrupted.push(u), true),
      },
      dev,
    );
    assert.deepEqual(dev.replies.filter((r) => r.unique !== 1).map((r) => [r.unique, r.error]), [[2, -Errno.EINTR], [4, 0], [10, 0]]);
    assert.deepEqual(interrupted, [2]);
  });

  test('FSYNC and WRITE may be deferred and completed later; a handler error after completing sends nothing more', () => {
    const dev = new ScriptedDevice().push(
      init(),
      request(Opcode.FSYNC, hex(le64(3), le32(0), le32(0)), { unique: 2 }),
      request(Opcode.WRITE, hex(le64(3), le64(0), le32(2), le32(0), le64(0), le32(0), le32(0), 'abcd'), { unique: 4 }),
      request(Opcode.STATFS, Buffer.alloc(0), { unique: 6 }),
      request(Opcode.FLUSH, hex(le64(3), le32(0), le32(0), le64(1)), { unique: 8 }),
    );
    let session: FuseSession | undefined;
    serve(
      {
        init: (s) => (session = s),
        fsync: () => DEFERRED,
        write: () => DEFERRED,
        statfs: () => {
          session!.completeWrite(4, 2);
          session!.complete(2, Errno.EIO);
        },
        flush: (r) => {
          session!.complete(r.header.unique, 0);
          throw new FuseError(Errno.EACCES);
        },
      },
      dev,
    );
    assert.deepEqual(dev.replies.filter((r) => r.unique !== 1).map((r) => [r.unique, r.error]), [[4, 0], [2, -Errno.EIO], [6, 0], [8, 0]]);
    assert.equal(dev.replyTo(4).payload.toString('hex'), hex(le32(2), le32(0)).toString('hex'));
  });

  test('DESTROY is answered, calls destroy once and ends the session', () => {
    let destroyed = 0;
    const dev = new ScriptedDevice().push(init(), request(Opcode.DESTROY, Buffer.alloc(0), { unique: 2 }), request(Opcode.STATFS, Buffer.alloc(0), { unique: 4 }));
    serve({ destroy: () => destroyed++ }, dev);
    assert.equal(dev.replyTo(2).error, 0);
    assert.equal(dev.hasReply(4), false, 'nothing is served after DESTROY');
    assert.equal(destroyed, 1);
  });

  test('messages posted to a port are delivered before the next request', () => {
    const { port1, port2 } = new MessageChannel();
    const seen: unknown[] = [];
    const dev = new ScriptedDevice().push(init());
    port1.postMessage({ hello: 1 });
    serve({ onMessage: (m) => seen.push(m) }, dev, { ports: [port2] });
    port1.close();
    assert.deepEqual(seen, [{ hello: 1 }]);
  });

  test('a malformed request is answered EIO and the session goes on', () => {
    const bad = request(Opcode.WRITE, hex(le64(1), le64(0), le32(100), le32(0), le64(0), le32(0), le32(0)), { unique: 2 });
    const dev = new ScriptedDevice().push(init(), bad, request(Opcode.STATFS, Buffer.alloc(0), { unique: 4 }));
    serve({}, dev);
    assert.equal(dev.replyTo(2).error, -Errno.EIO);
    assert.equal(dev.replyTo(4).error, 0);
    assert.equal(dev.replyTo(4).payload.length, 80);
  });
});
