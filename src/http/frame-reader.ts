/**
 * Async frame reader over a byte source (an HTTP/2 response, a socket, any
 * async iterable of byte arrays). Reads only as far as the caller asks: the
 * body of an LTX frame is handed out as its own async iterable, streamed
 * from the source without being buffered whole.
 */
import { UnexpectedEOFError } from './errors.js';
import { FrameDecoder, type FrameEvent, type LTXFrameHeader, type StreamFrame } from './frames.js';

/** An LTX frame as read from a stream: header plus its payload, still arriving. */
export interface LTXFrame extends LTXFrameHeader {
  /**
   * The LTX file's bytes. Iterate it before asking for the next frame; if the
   * caller moves on early, the reader skips the rest of the body.
   */
  readonly body: AsyncIterable<Buffer>;
}

export type ReadFrame = Exclude<StreamFrame, LTXFrameHeader> | LTXFrame;

export class FrameReader implements AsyncIterable<ReadFrame> {
  private readonly decoder = new FrameDecoder();
  private readonly source: AsyncIterator<Uint8Array>;
  /** Decoded events not yet handed out; at most one source buffer's worth. */
  private events: FrameEvent[] = [];
  private eventIndex = 0;
  private sourceDone = false;
  /** The LTX body being read, if its terminator has not been consumed yet. */
  private openBody: { ended: boolean } | undefined;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.source = source[Symbol.asyncIterator]();
  }

  /**
   * The next frame, or undefined when the source ended exactly at a frame
   * boundary. Throws `UnexpectedEOFError` if it ended inside a frame,
   * `UnknownFrameTypeError` / `WireLimitError` on malformed input, and
   * whatever the source throws (a reset stream, an aborted request).
   */
  async next(): Promise<ReadFrame | undefined> {
    if (this.openBody) await this.skipBody(this.openBody);
    const ev = await this.nextEvent();
    if (ev === undefined) return undefined;
    if (ev.kind !== 'frame') throw new Error(`frame reader out of sync: ${ev.kind}`);
    if (ev.frame.type !== 'ltx') return ev.frame;
    const state = { ended: false };
    this.openBody = state;
    return { ...ev.frame, body: this.readBody(state) };
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ReadFrame> {
    for (;;) {
      const frame = await this.next();
      if (frame === undefined) return;
      yield frame;
    }
  }

  /** Stops reading and releases the source (e.g. ends the HTTP/2 stream). */
  async close(): Promise<void> {
    this.sourceDone = true;
    await this.source.return?.();
  }

  private async *readBody(state: { ended: boolean }): AsyncGenerator<Buffer> {
    while (!state.ended && this.openBody === state) {
      const ev = await this.bodyEvent(state);
      if (ev.kind === 'ltx-data') yield ev.data;
    }
  }

  private async skipBody(state: { ended: boolean }): Promise<void> {
    while (!state.ended) await this.bodyEvent(state);
  }

  private async bodyEvent(state: { ended: boolean }): Promise<FrameEvent> {
    const ev = await this.nextEvent();
    if (ev === undefined) throw new UnexpectedEOFError();
    if (ev.kind === 'ltx-end') {
      state.ended = true;
      this.openBody = undefined;
    }
    return ev;
  }

  private async nextEvent(): Promise<FrameEvent | undefined> {
    while (this.eventIndex >= this.events.length) {
      if (this.sourceDone) return undefined;
      this.events = [];
      this.eventIndex = 0;
      const r = await this.source.next();
      if (r.done) {
        this.sourceDone = true;
        this.decoder.end();
        return undefined;
      }
      const chunk = r.value;
      this.decoder.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength), (e) => this.events.push(e));
    }
    return this.events[this.eventIndex++];
  }
}
