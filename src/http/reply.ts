/**
 * Writes responses with the header names, order and framing Go's net/http
 * gives LiteFS's handlers, over either protocol (wire README "Other
 * endpoints"):
 *
 * - HTTP/1.1: headers the handler set, sorted by name; `Date`; then
 *   `Content-Length`, a sniffed `Content-Type`, `Transfer-Encoding`.
 * - HTTP/2: headers the handler set, sorted; sniffed `content-type`;
 *   `content-length`; `date`.
 *
 * Node would otherwise add `Connection: keep-alive` / `Keep-Alive` and put
 * `Date` elsewhere, so headers are collected here and applied in one go when
 * the status is written.
 */
import { constants as h2constants, type Http2ServerResponse } from 'node:http2';
import type { ServerResponse } from 'node:http';

export type RawResponse = ServerResponse | Http2ServerResponse;

export class Reply {
  /** Headers the handler set, by canonical name (Go's textproto form, e.g. `Litefs-Id`). */
  private readonly headers = new Map<string, string>();
  private closed = false;

  constructor(
    private readonly res: RawResponse,
    readonly http2: boolean,
  ) {
    res.once('close', () => {
      this.closed = true;
    });
  }

  /** True once the connection or stream has gone, or the response has ended. */
  get gone(): boolean {
    return this.closed || this.res.writableEnded || this.res.destroyed;
  }

  /** Runs `fn` when the response closes: finished, or the connection or stream went away. */
  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.res.once('close', fn);
  }

  get headersSent(): boolean {
    return this.res.headersSent;
  }

  /** Sets a handler header (like Go's w.Header().Set); takes effect when the status is written. */
  set(name: string, value: string): void {
    this.headers.set(name, value);
  }

  /** Go's http.Error: plain-text `message\n`, nosniff, fixed length. */
  error(status: number, message: string): void {
    this.set('Content-Type', 'text/plain; charset=utf-8');
    this.set('X-Content-Type-Options', 'nosniff');
    this.send(status, message + '\n');
  }

  /**
   * A complete small body with Content-Length, as Go sends a handler's output
   * that fit its buffer. `sniffed` is the type Go's DetectContentType would
   * give the body when the handler set none (omit for an empty body).
   */
  send(status: number, body: string | Uint8Array, sniffed?: string): void {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    this.writeHead(status, bytes.length, bytes.length > 0 ? sniffed : undefined);
    this.res.end(bytes);
  }

  /** Writes the status and headers for a body of unknown length (chunked in HTTP/1.1) and flushes them. */
  start(status: number, sniffed?: string): void {
    this.writeHead(status, undefined, sniffed);
    if (this.http2) return;
    // Go flushes the header block before any body when the handler calls Flush.
    (this.res as ServerResponse).flushHeaders();
  }

  /** Writes body bytes, waiting while the peer applies backpressure. False if the peer is gone. */
  async write(bytes: Uint8Array): Promise<boolean> {
    if (this.gone) return false;
    // Both response types take (chunk) => boolean; TypeScript cannot call the union.
    if ((this.res as ServerResponse).write(bytes)) return true;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.res.removeListener('drain', done);
        this.res.removeListener('close', done);
        resolve();
      };
      this.res.once('drain', done);
      this.res.once('close', done);
    });
    return !this.gone;
  }

  end(): void {
    if (!this.res.writableEnded) this.res.end();
  }

  /** Ends the response abnormally (HTTP/2 RST_STREAM, HTTP/1.1 connection close) so the peer sees an error. */
  abort(): void {
    if (this.http2) (this.res as Http2ServerResponse).stream.close(h2constants.NGHTTP2_INTERNAL_ERROR);
    else (this.res as ServerResponse).destroy();
  }

  private writeHead(status: number, contentLength: number | undefined, sniffed: string | undefined): void {
    const res = this.res;
    const ordered: [string, string][] = [...this.headers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const date = new Date().toUTCString();
    if (this.http2) {
      if (sniffed !== undefined) ordered.push(['content-type', sniffed]);
      if (contentLength !== undefined) ordered.push(['content-length', String(contentLength)]);
      ordered.push(['date', date]);
    } else {
      ordered.push(['Date', date]);
      if (contentLength !== undefined) ordered.push(['Content-Length', String(contentLength)]);
      if (sniffed !== undefined) ordered.push(['Content-Type', sniffed]);
      // Keep the connection alive without announcing it, as Go does for HTTP/1.1.
      (res as ServerResponse).removeHeader('Connection');
    }
    res.sendDate = false;
    for (const [name, value] of ordered) res.setHeader(name, value);
    res.writeHead(status);
  }
}
