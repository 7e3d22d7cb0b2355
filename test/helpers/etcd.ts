import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real single-member etcd (Debian etcd-server, 3.4) for tests: its own temp
 * data dir, its own free loopback client and peer ports (never 2379/2380,
 * where the package's system etcd may listen), a health wait, and stop() that
 * kills it by PID and removes the data dir.
 */
export interface Etcd {
  readonly clientURL: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/**
 * `lease:` lines of a litefs.yml for a candidate named `hostname` on `etcd`
 * with 2 s leases (the minimum) and a 1 s demote delay, so tests fail over
 * quickly; `$SELF_URL` is the node's API URL (see LiteFSDaemonOptions.leaseLines).
 */
export function etcdLeaseLines(etcd: Etcd, key: string, hostname: string, extra: readonly string[] = []): string[] {
  return [
    '  type: etcd',
    `  hostname: ${hostname}`,
    '  advertise-url: "$SELF_URL"',
    '  candidate: true',
    '  demote-delay: 1s',
    '  etcd:',
    `    endpoints: ["${etcd.clientURL}"]`,
    `    key: "${key}"`,
    '    ttl: 2s',
    ...extra,
  ];
}

const START_DEADLINE_MS = 60_000;
const RESERVED = new Set([2379, 2380]);

export async function startEtcd(): Promise<Etcd> {
  let lastErr: unknown = null;
  // A port picked free can be taken by someone else before etcd binds it: retry.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce();
    } catch (e) {
      lastErr = e;
    }
  }
  throw lastErr instanceof Error ? lastErr : new Error(String(lastErr));
}

async function startOnce(): Promise<Etcd> {
  const dataDir = await mkdtemp(join(tmpdir(), 'litefs-etcd-'));
  const clientPort = await freePort();
  let peerPort = await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  const clientURL = `http://127.0.0.1:${clientPort}`;
  const peerURL = `http://127.0.0.1:${peerPort}`;
  const env: NodeJS.ProcessEnv = {};
  // ETCD_* variables would override our flags (etcd reads them): drop them.
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCD_')) env[k] = v;
  const child = spawn(
    'etcd',
    [
      '--name', 'test',
      '--data-dir', dataDir,
      '--listen-client-urls', clientURL,
      '--advertise-client-urls', clientURL,
      '--listen-peer-urls', peerURL,
      '--initial-advertise-peer-urls', peerURL,
      '--initial-cluster', `test=${peerURL}`,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', `litefs-test-${randomBytes(6).toString('hex')}`,
      '--logger', 'zap',
      '--log-level', 'error',
    ],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    if (stderr.length < 8000) stderr += c.toString('utf8');
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    await killByPid(child, exited);
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await waitHealthy(clientURL, child);
  } catch (e) {
    await stop();
    throw new Error(`etcd did not become healthy on ${clientURL}: ${(e as Error).message}\n${stderr}`);
  }
  return { clientURL, pid: child.pid!, stop };
}

async function waitHealthy(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + START_DEADLINE_MS;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`etcd exited (${child.exitCode ?? child.signalCode})`);
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      const text = await res.text();
      if (res.status === 200 && /"health":\s*"true"/.test(text)) return;
      last = `HTTP ${res.status} ${text}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out: ${last}`);
}

async function killByPid(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  process.kill(child.pid, 'SIGTERM');
  const t = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, 10_000);
  await exited;
  clearTimeout(t);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => (port === 0 || RESERVED.has(port) ? freePort().then(resolve, reject) : resolve(port)));
    });
  });
}
