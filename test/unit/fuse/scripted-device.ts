/** A FuseDevice that replays scripted requests and records replies (no kernel needed). */
import type { FuseDevice } from '../../../src/fuse/session.js';

export interface Reply {
  readonly len: number;
  readonly error: number;
  readonly unique: number;
  readonly payload: Buffer;
}

export class ScriptedDevice implements FuseDevice {
  readonly replies: Reply[] = [];
  private readonly queue: Buffer[] = [];
  /** Called before each read; may push more requests (e.g. after inspecting replies). */
  onRead: (() => void) | undefined;

  get pending(): number {
    return this.queue.length;
  }

  push(...reqs: Buffer[]): this {
    this.queue.push(...reqs);
    return this;
  }

  read(buf: Buffer): number {
    this.onRead?.();
    const next = this.queue.shift();
    if (next === undefined) throw Object.assign(new Error('unmounted'), { code: 'ENODEV' });
    next.copy(buf);
    return next.length;
  }

  write(buf: Buffer, len: number): void {
    this.replies.push({
      len: buf.readUInt32LE(0),
      error: buf.readInt32LE(4),
      unique: Number(buf.readBigUInt64LE(8)),
      payload: Buffer.from(buf.subarray(16, len)),
    });
  }

  /** The reply to request `unique` (throws if there is none). */
  replyTo(unique: number): Reply {
    const r = this.replies.find((x) => x.unique === unique);
    if (r === undefined) throw new Error(`no reply to unique ${unique}`);
    return r;
  }

  hasReply(unique: number): boolean {
    return this.replies.some((x) => x.unique === unique);
  }
}
