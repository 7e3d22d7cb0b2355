/**
 * The HTTP proxy's cost: requests per second and per-request latency
 * through the proxy against the same requests sent straight to the
 * application (the baseline), in the same run. The application, the proxy
 * and the load each run in their own process on 127.0.0.1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { freePort } from './free-port.js';
import { formatTable } from './measure.js';

interface Load {
  readonly rps: number;
  readonly p50us: number;
  readonly p99us: number;
}

async function startChild(args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [new URL('./proxy-child.js', import.meta.url).pathname, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`proxy-child ${args.join(' ')} exited ${code}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve();
    });
  });
  return child;
}

function once(agent: Agent, port: number, method: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: '/item/1', agent, headers: { cookie: '__txid=0000000000000001' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '{"v":"a small write"}' : undefined);
  });
}

/** `connections` clients, each sending one request after the other for `ms`. */
async function load(port: number, method: string, connections: number, ms: number): Promise<Load> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const latencies: number[] = [];
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await once(agent, port, method);
        latencies.push((performance.now() - t) * 1000);
      }
    }),
  );
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { rps: latencies.length / (ms / 1000), p50us: at(0.5), p99us: at(0.99) };
}

export async function runProxyBench(ms: number): Promise<string> {
  const appPort = await freePort();
  const proxyPort = await freePort();
  const children: ChildProcess[] = [];
  try {
    children.push(await startChild(['app', String(appPort)]));
    children.push(await startChild(['proxy', String(proxyPort), String(appPort)]));
    const rows: string[][] = [];
    for (const method of ['GET', 'POST']) {
      for (const connections of [1, 16]) {
        // Warm both paths (connections, JIT) before the timed rounds; then alternate, best of 3.
        await load(appPort, method, connections, ms / 5);
        await load(proxyPort, method, connections, ms / 5);
        let direct: Load | undefined;
        let proxied: Load | undefined;
        for (let round = 0; round < 3; round++) {
          const d = await load(appPort, method, connections, ms);
          const p = await load(proxyPort, method, connections, ms);
          if (direct === undefined || d.rps > direct.rps) direct = d;
          if (proxied === undefined || p.rps > proxied.rps) proxied = p;
        }
        const what = `${method}${method === 'POST' ? ' (write: + Set-Cookie)' : ' (read: __txid reached)'}, ${connections} connection${connections > 1 ? 's' : ''}`;
        rows.push([
          what,
          Math.round(direct!.rps).toLocaleString('en-US'),
          Math.round(proxied!.rps).toLocaleString('en-US'),
          `${((proxied!.rps / direct!.rps) * 100).toFixed(0)}%`,
          `${direct!.p50us.toFixed(0)} / ${direct!.p99us.toFixed(0)}`,
          `${proxied!.p50us.toFixed(0)} / ${proxied!.p99us.toFixed(0)}`,
        ]);
      }
    }
    return formatTable([['requests', 'direct req/s', 'via proxy req/s', 'proxy ÷ direct', 'direct p50 / p99 µs', 'proxy p50 / p99 µs'], ...rows]);
  } finally {
    for (const child of children) child.kill();
  }
}
