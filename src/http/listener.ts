/**
 * One TCP port for both HTTP/1.1 and cleartext HTTP/2 (h2c with prior
 * knowledge), as LiteFS serves with Go's h2c handler. Node's HTTP/2 server
 * without TLS speaks only h2c and its HTTP/1 server only HTTP/1, so a plain
 * net.Server reads the first bytes of each connection and hands the socket
 * to whichever server the client is speaking to.
 */
import { createServer as createHTTP1Server, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  createServer as createHTTP2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
} from 'node:http2';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';

/** The client connection preface of HTTP/2 (RFC 9113 §3.4); its first 14 bytes identify h2c. */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const H2_SIGNATURE_LENGTH = 14;
/** How long close() waits for open connections to drain before cutting them. */
const CLOSE_GRACE_MS = 500;

export type RequestHandler = (
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
  http2: boolean,
) => void;

export interface DualProtocolListener {
  readonly server: Server;
  /** Closes the listener and every open connection. */
  close(): Promise<void>;
}

export function createDualProtocolListener(handler: RequestHandler): DualProtocolListener {
  const h1 = createHTTP1Server(
    // Go has no request-body deadline; a large /import must not be cut at Node's 300 s default.
    { requestTimeout: 0 },
    (req, res) => handler(req, res, false),
  );
  const h2 = createHTTP2Server({}, (req, res) => handler(req, res, true));
  // A peer that breaks the HTTP/2 protocol loses its session; the server goes on.
  h2.on('sessionError', () => {});
  const sockets = new Set<Socket>();

  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    let seen = Buffer.alloc(0);
    const onError = (): void => {
      socket.destroy();
    };
    const onData = (data: Buffer): void => {
      seen = Buffer.concat([seen, data]);
      const n = Math.min(seen.length, H2_SIGNATURE_LENGTH);
      const isH2Prefix = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (isH2Prefix && n < H2_SIGNATURE_LENGTH) return; // undecided: wait for more bytes
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.pause();
      // Put the bytes back: both servers consume what is buffered on the socket
      // (the HTTP/2 session reads it on its first tick).
      socket.unshift(seen);
      if (isH2Prefix) {
        h2.emit('connection', socket);
      } else {
        h1.emit('connection', socket);
        socket.resume();
      }
    };
    socket.on('error', onError);
    socket.on('data', onData);
  });

  const sessions = new Set<ServerHttp2Session>();
  h2.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });

  return {
    server,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Let responses already written (a stream's End frame) reach the peer:
      // HTTP/2 sessions get a GOAWAY and finish their streams, idle HTTP/1.1
      // connections close; whatever is still open after a grace period is cut.
      for (const session of sessions) session.close();
      h1.closeIdleConnections();
      const deadline = Date.now() + CLOSE_GRACE_MS;
      while (sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      for (const s of sockets) s.destroy();
      await closed;
      h1.close();
      h2.close();
    },
  };
}
