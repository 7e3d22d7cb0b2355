/**
 * The server processes of the proxy benchmark (bench/proxy.ts), each in its
 * own process so none shares an event loop with the load:
 *
 *   proxy-child.js app PORT          an application answering every request with 64 bytes
 *   proxy-child.js proxy PORT TARGET the proxy in front of it, on a primary whose
 *                                    database position a stand-in node reports
 *
 * Prints "ready" once listening.
 */
import { createServer } from 'node:http';
import { ProxyServer } from '../src/http/proxy/server.js';

const [kind, portText, targetText] = process.argv.slice(2);
const port = Number(portText);

if (kind === 'app') {
  const body = Buffer.alloc(64, 'x');
  const app = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length }).end(body));
  });
  app.keepAliveTimeout = 60_000;
  app.listen(port, '127.0.0.1', () => console.log('ready'));
} else if (kind === 'proxy') {
  let txid = 1n;
  // A stand-in for the node: this measures the proxy's own HTTP work (the real
  // node's position barrier is one message to the FUSE thread and back).
  const node = {
    isPrimary: () => true,
    knownPrimary: () => null,
    lagMs: () => 0,
    txid: () => txid,
    currentTXID: () => Promise.resolve(++txid),
    changed: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
  };
  const proxy = new ProxyServer(node, {
    host: '127.0.0.1',
    port,
    target: { host: '127.0.0.1', port: Number(targetText) },
    db: 'bench.db',
    maxLagMs: 0,
    passthrough: [],
    alwaysForward: [],
    primaryRedirectTimeoutMs: 5000,
    readTimeoutMs: 0,
    readHeaderTimeoutMs: 10_000,
    writeTimeoutMs: 0,
    idleTimeoutMs: 60_000,
    writes: 'forward',
    debug: false,
    log: (line) => console.error(line),
  });
  void proxy.listen().then(() => console.log('ready'));
} else {
  console.error('usage: proxy-child.js app PORT | proxy PORT TARGET_PORT');
  process.exit(2);
}
