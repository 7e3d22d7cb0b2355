import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Fault knobs for a lease store seen over HTTP: answer 500, answer a body
 * that is not JSON, or hold the request (until the client gives up). Used by
 * the Consul stand-in directly and, through FaultProxy, in front of a real
 * etcd.
 */
/** status500: HTTP 500; malformed: not JSON; wrongShape: valid JSON of the wrong shape; hang: never answers. */
export type FaultKind = 'status500' | 'malformed' | 'wrongShape' | 'hang';

export interface Fault {
  readonly kind: FaultKind;
  /** Only requests whose path matches (default: all). */
  readonly path?: RegExp;
}

export class FaultKnob {
  private fault: Fault | null = null;
  private readonly hanging = new Set<ServerResponse>();

  set(f: Fault | null): void {
    this.fault = f;
    if (f === null) this.releaseHanging();
  }

  /** Answers the request with the fault when one is set and matches; returns true if it did. */
  apply(req: IncomingMessage, res: ServerResponse): boolean {
    const f = this.fault;
    if (f === null || (f.path && !f.path.test(req.url ?? ''))) return false;
    req.resume();
    switch (f.kind) {
      case 'status500':
        res.writeHead(500, { 'content-type': 'text/plain' }).end('injected fault: internal server error');
        return true;
      case 'malformed':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"this is": not json');
        return true;
      case 'wrongShape':
        res.writeHead(200, { 'content-type': 'application/json' }).end('[1,2]');
        return true;
      case 'hang':
        // Never answered; ended when the fault is cleared or the server closes.
        this.hanging.add(res);
        res.on('close', () => this.hanging.delete(res));
        return true;
    }
  }

  releaseHanging(): void {
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
  }
}

/** A loopback HTTP server that forwards to `target` unless a fault is set. */
export class FaultProxy {
  readonly faults = new FaultKnob();
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: string): Promise<FaultProxy> {
    const t = new URL(target);
    let proxy: FaultProxy | null = null;
    const server = createServer((req, res) => {
      if (proxy?.faults.apply(req, res)) return;
      const up = httpRequest(
        { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      res.on('close', () => up.destroy());
      req.pipe(up);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    proxy = new FaultProxy(server, `http://127.0.0.1:${port}`);
    return proxy;
  }

  async close(): Promise<void> {
    this.faults.releaseHanging();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
