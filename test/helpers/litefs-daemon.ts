import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type Header, LTXDecoder, checksumDatabase, formatHex16, parseFilename } from '../../src/ltx/index.js';
import { MOUNT_DIR_PREFIX, isMounted } from './mount.js';
import { repoRoot } from './paths.js';

/**
 * `litefs mount` as a child process for the FUSE suite: a temporary folder
 * holding litefs.yml, the data directory and the mount point. The folder
 * name carries this test process's pid (MOUNT_DIR_PREFIX), so the teardown
 * check can tell our leaks from a concurrent run's mounts.
 */
export interface LiteFSDaemonOptions {
  /** data.compress (default true, as LiteFS). */
  compress?: boolean;
  /** strict-verify (default true: tests want every commit checked). */
  strictVerify?: boolean;
  /** Pass -fuse.debug (every FUSE request on stderr). */
  fuseDebug?: boolean;
  /** `exec` entries (each a command line; `$MNT` stands for the mount's path); none by default. */
  exec?: string[];
  /** lease.candidate (default true: a static primary). false makes a replica of `primaryURL`. */
  candidate?: boolean;
  /** lease.advertise-url: the primary's API URL (required on a replica). */
  primaryURL?: string;
  /** lease.hostname: the primary's name on every node of a static cluster (default 'primary'). */
  primaryHostname?: string;
  /** lease.databases (replicas only). */
  databases?: string[];
  /** lease.reconnect-delay (default '100ms' in tests: reconnects are what they exercise). */
  reconnectDelay?: string;
  /** skip-sync: do not wait for the first catch-up before `mounted`'s exec. */
  skipSync?: boolean;
  /** Extra lines under `data:` (e.g. `  retention: 1s`). */
  dataLines?: string[];
  /** Extra top-level lines (e.g. `exit-on-error: false`, a `log:` section). */
  topLines?: string[];
  /** Loopback address of the node API (default 127.0.0.1; another 127.x address stands for another host). */
  httpHost?: string;
  /**
   * Lines under `lease:` replacing the static lease (e.g. an etcd lease); the
   * node's own API URL is filled in for `$SELF_URL`.
   */
  leaseLines?: string[];
}

export interface LiteFSDaemon {
  readonly base: string;
  /** fuse.dir: where applications open databases. */
  readonly mnt: string;
  /** data.dir */
  readonly data: string;
  readonly configPath: string;
  /** `<data>/dbs/<db>/ltx` */
  ltxDir(db: string): string;
  /** `<data>/dbs/<db>/database` */
  databasePath(db: string): string;
  /** True while a daemon process is running. */
  readonly running: boolean;
  /** Starts the daemon (again) on the same folders; resolves once `mounted` was printed and the mount is listed. */
  start(): Promise<void>;
  /** SIGTERM; requires exit 0 and the mount gone (else forces cleanup and throws). */
  stop(): Promise<void>;
  /**
   * SIGKILL (a crash: nothing is unmounted, no file closed), wait for the
   * exit, then detach the dead mount (`umount -l`) so the next start mounts
   * afresh. The page cache survives, as with any process death.
   */
  kill(): Promise<void>;
  /** stop() if running, then deletes the folder. Idempotent; for after/finally hooks. */
  close(): Promise<void>;
  /** The daemon's recent output (stdout and stderr), for failure messages. */
  output(): string;
  /** `http://<httpHost>:<port>`: the node API (http.addr is a free port on 127.0.0.1, bound on httpHost). */
  readonly httpURL: string;
  /** The running daemon's pid (undefined when not running). */
  readonly pid: number | undefined;
  /** Resolves with the exit code (or signal name) of the current process. */
  exited(): Promise<number | string>;
}

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
const OUTPUT_TAIL = 32 * 1024;

/** Writes the config and starts the daemon. */
export async function startLiteFS(options: LiteFSDaemonOptions = {}): Promise<LiteFSDaemon> {
  const base = mkdtempSync(join(tmpdir(), `${MOUNT_DIR_PREFIX}${process.pid}-`));
  const mnt = join(base, 'mnt');
  const data = join(base, 'data');
  mkdirSync(mnt);
  const configPath = join(base, 'litefs.yml');
  const httpPort = await freePort();
  const httpHost = options.httpHost ?? '127.0.0.1';
  writeFileSync(
    configPath,
    [
      'fuse:',
      `  dir: "${mnt}"`,
      'data:',
      `  dir: "${data}"`,
      `  compress: ${options.compress ?? true}`,
      ...(options.dataLines ?? []),
      `strict-verify: ${options.strictVerify ?? true}`,
      `skip-sync: ${options.skipSync ?? false}`,
      ...(options.topLines ?? []),
      'lease:',
      ...(options.leaseLines !== undefined
        ? options.leaseLines.map((l) => l.replaceAll('$SELF_URL', `http://${httpHost}:${httpPort}`))
        : [
            '  type: static',
            `  candidate: ${options.candidate ?? true}`,
            `  hostname: ${JSON.stringify(options.primaryHostname ?? 'primary')}`,
            ...(options.primaryURL === undefined ? [] : [`  advertise-url: ${JSON.stringify(options.primaryURL)}`]),
          ]),
      `  reconnect-delay: ${options.reconnectDelay ?? '100ms'}`,
      ...(options.databases === undefined ? [] : ['  databases:', ...options.databases.map((d) => `    - ${JSON.stringify(d)}`)]),
      'http:',
      `  addr: "${httpHost}:${httpPort}"`,
      ...(options.exec === undefined ? [] : ['exec:', ...options.exec.map((cmd) => `  - cmd: ${JSON.stringify(cmd.replaceAll('$MNT', mnt))}`)]),
      '',
    ].join('\n'),
  );
  const cli = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
  const args = [cli, 'mount', '-config', configPath, ...(options.fuseDebug === true ? ['-fuse.debug'] : [])];

  let child: ChildProcess | null = null;
  let exited: Promise<number | string> = Promise.resolve(0);
  let out = '';
  let closed = false;
  const keep = (chunk: Buffer): void => {
    out = (out + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
  };
  const fail = (message: string): Error => new Error(`${message}\n--- litefs output (tail) ---\n${out}`);

  const forceCleanup = (): void => {
    if (isMounted(mnt)) spawnSync('umount', ['-l', mnt], { stdio: 'ignore' });
    if (child !== null && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };

  const daemon: LiteFSDaemon = {
    base,
    mnt,
    data,
    configPath,
    ltxDir: (db) => join(data, 'dbs', db, 'ltx'),
    databasePath: (db) => join(data, 'dbs', db, 'database'),
    get running() {
      return child !== null && child.exitCode === null && child.signalCode === null;
    },
    async start() {
      if (daemon.running) throw new Error('litefs daemon already running');
      const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      exited = new Promise((resolve) => {
        proc.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
        proc.on('error', (err) => resolve(`spawn error: ${err.message}`));
      });
      proc.stderr.on('data', keep);
      const announced = new Promise<void>((resolve) => {
        let pending = '';
        proc.stdout.on('data', (chunk: Buffer) => {
          keep(chunk);
          pending += chunk.toString('utf8');
          if (pending.split('\n').some((l) => l.trim() === `mounted ${mnt}`)) resolve();
        });
      });
      const outcome = await Promise.race([
        announced.then(() => 'ok' as const),
        exited.then((code) => `exited (${code}) before mounting`),
        sleep(START_TIMEOUT_MS).then(() => `did not print "mounted ${mnt}" within ${START_TIMEOUT_MS} ms`),
      ]);
      if (outcome !== 'ok') {
        forceCleanup();
        throw fail(`litefs mount ${outcome}`);
      }
      const deadline = Date.now() + START_TIMEOUT_MS;
      while (!isMounted(mnt)) {
        if (Date.now() > deadline) {
          forceCleanup();
          throw fail(`${mnt} announced but not mounted`);
        }
        await sleep(20);
      }
    },
    async stop() {
      if (child === null) return;
      const proc = child;
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const code = await Promise.race([exited, sleep(STOP_TIMEOUT_MS).then(() => 'timeout')]);
      const stillMounted = isMounted(mnt);
      if (code === 0 && !stillMounted) return;
      forceCleanup();
      throw fail(`litefs mount ${code === 'timeout' ? 'did not exit after SIGTERM' : `exited with ${code}`}${stillMounted ? ' and left the mount' : ''}`);
    },
    async kill() {
      if (child === null) return;
      const proc = child;
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await Promise.race([exited, sleep(STOP_TIMEOUT_MS)]);
      if (isMounted(mnt)) spawnSync('umount', ['-l', mnt], { stdio: 'ignore' });
      if (isMounted(mnt)) throw fail(`${mnt} still mounted after SIGKILL and umount -l`);
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await daemon.stop();
      } finally {
        forceCleanup();
        rmSync(base, { recursive: true, force: true });
      }
    },
    output: () => out,
    httpURL: `http://${httpHost}:${httpPort}`,
    get pid() {
      return daemon.running ? child?.pid : undefined;
    },
    exited: () => exited,
  };
  try {
    await daemon.start();
  } catch (err) {
    closed = true;
    rmSync(base, { recursive: true, force: true });
    throw err;
  }
  return daemon;
}

// ---- checks of a daemon's LTX files ----

export interface LTXFile {
  readonly name: string;
  readonly header: Header;
  readonly postApply: bigint;
  readonly pages: { pgno: number; data: Uint8Array }[];
}

/** Every LTX file of `db`, decoded and verified (file checksum, page order), in TXID order. */
export function readLTXFiles(daemon: LiteFSDaemon, db: string): LTXFile[] {
  const dir = daemon.ltxDir(db);
  const names = readdirSync(dir).filter((n) => n.endsWith('.ltx')).sort();
  return names.map((name) => {
    const pages: { pgno: number; data: Uint8Array }[] = [];
    const dec = new LTXDecoder({ onPage: (pgno, data) => pages.push({ pgno, data: data.slice() }) }, { strict: true });
    dec.push(readFileSync(join(dir, name)));
    const summary = dec.end();
    return { name, header: summary.header, postApply: summary.trailer.postApplyChecksum, pages };
  });
}

/** TXIDs 1..n with one file each, pre-apply of N+1 = post-apply of N. */
export function assertChain(db: string, files: LTXFile[]): void {
  let prev = 0n;
  files.forEach((f, i) => {
    const txid = BigInt(i + 1);
    const { minTXID, maxTXID } = parseFilename(f.name);
    assert.equal(minTXID, txid, `${db}: LTX file ${f.name} is not TXID ${txid}`);
    assert.equal(maxTXID, txid, `${db}: LTX file ${f.name} spans more than one transaction`);
    assert.equal(f.header.minTXID, txid, `${db}: ${f.name} header min TXID`);
    assert.equal(
      f.header.preApplyChecksum,
      prev,
      `${db}: ${f.name} pre-apply ${formatHex16(f.header.preApplyChecksum)} != post-apply of previous ${formatHex16(prev)}`,
    );
    prev = f.postApply;
  });
}

/**
 * A replica's files: one unbroken history, each file starting where the one
 * before ended (TXID and checksum). The first may be a snapshot (`1-N`): a
 * replica that joined late, or fell behind retention, starts from one.
 */
export function assertContinuous(db: string, files: LTXFile[]): void {
  assert.ok(files.length > 0, `${db}: no LTX files`);
  assert.equal(files[0]!.header.minTXID, 1n, `${db}: the first LTX file ${files[0]!.name} does not start at TXID 1`);
  for (let i = 1; i < files.length; i++) {
    const prev = files[i - 1]!;
    const f = files[i]!;
    assert.equal(f.header.minTXID, prev.header.maxTXID + 1n, `${db}: ${f.name} does not follow ${prev.name}`);
    assert.equal(f.header.preApplyChecksum, prev.postApply, `${db}: ${f.name} pre-apply ${formatHex16(f.header.preApplyChecksum)} != post-apply of ${prev.name} ${formatHex16(prev.postApply)}`);
  }
}

/** The database image the LTX files produce when applied in order to an empty file. */
export function replay(files: LTXFile[]): Buffer {
  let image = Buffer.alloc(0);
  for (const f of files) {
    const size = f.header.pageSize;
    for (const p of f.pages) {
      const end = p.pgno * size;
      if (image.length < end) image = Buffer.concat([image, Buffer.alloc(end - image.length)]);
      image.set(p.data, (p.pgno - 1) * size);
    }
    const want = f.header.commit * size;
    image = image.length >= want ? image.subarray(0, want) : Buffer.concat([image, Buffer.alloc(want - image.length)]);
  }
  return image;
}

export function fileChecksum(image: Buffer, pageSize: number): bigint {
  return checksumDatabase(pageSize, image.length / pageSize, (pgno) => image.subarray((pgno - 1) * pageSize, pgno * pageSize));
}

/** A port that was free a moment ago (the kernel's choice for port 0). */
/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
