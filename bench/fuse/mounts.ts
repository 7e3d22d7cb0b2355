import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { freePort } from '../free-port.js';
import type { CleanupStack } from './cleanup.js';
import { pinned } from './child.js';
import { cliMain } from './paths.js';

/** One column of the benchmark: a folder the workloads run in. */
export interface BenchTarget {
  readonly label: string;
  readonly dir: string;
  /** Stops the daemon (if any), makes sure nothing is left mounted, deletes the folders. Idempotent. */
  stop(): Promise<void>;
  /** Why the column can no longer be measured (its daemon exited), or null. */
  failure(): string | null;
}

/** A daemon did not mount, or did not unmount cleanly. */
export class MountError extends Error {
  constructor(message: string, readonly log: string) {
    super(log.trim() === '' ? message : `${message}; output: ${log.trim().split('\n').slice(-3).join(' | ')}`);
    this.name = 'MountError';
  }
}

const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
const LOG_TAIL_CHARS = 8192;

/** The baseline column: a fresh folder on the host file system. */
export function plainFolder(workRoot: string, cleanup: CleanupStack, label: string): BenchTarget {
  const dir = mkdtempSync(join(workRoot, 'plain-'));
  const stop = cleanup.push(`delete ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  return { label, dir, stop, failure: () => null };
}

export interface OurMountOptions {
  flags: string[];
  cpu?: number;
}

/** `node dist/src/cli/main.js passthrough FLAGS SRC MNT`; ready once it prints `mounted MNT`. */
export function mountOurs(workRoot: string, cleanup: CleanupStack, label: string, o: OurMountOptions): Promise<BenchTarget> {
  return startDaemon(workRoot, cleanup, label, (src, mnt) => ({
    command: process.execPath,
    args: [cliMain, 'passthrough', ...o.flags, src, mnt],
    cpu: o.cpu,
    announces: true,
  }));
}

/**
 * `node dist/src/cli/main.js mount -config litefs.yml`: a single LiteFS node
 * (static lease, primary, no replica) whose FUSE folder is the column. The
 * data directory is the `src` folder startDaemon makes; the HTTP API listens
 * on a port free at start (as the FUSE test helper picks it).
 */
export async function mountLiteFS(workRoot: string, cleanup: CleanupStack, label: string): Promise<BenchTarget> {
  const port = await freePort();
  return startDaemon(workRoot, cleanup, label, (src, mnt) => {
    const config = join(dirname(src), 'litefs.yml');
    writeFileSync(
      config,
      [
        'fuse:',
        `  dir: ${JSON.stringify(mnt)}`,
        'data:',
        `  dir: ${JSON.stringify(src)}`,
        '  compress: true',
        'lease:',
        '  type: static',
        '  candidate: true',
        'http:',
        `  addr: "127.0.0.1:${port}"`,
        '',
      ].join('\n'),
    );
    return { command: process.execPath, args: [cliMain, 'mount', '-config', config], cpu: undefined, announces: true };
  });
}

export interface PassthroughLlOptions {
  /** -o options besides source= (e.g. cache=always,timeout=0). */
  options: string;
  singleThreaded: boolean;
  cpu?: number;
}

/** libfuse3's passthrough_ll in the foreground; it prints nothing, so readiness is the mount table. */
export function mountPassthroughLl(
  workRoot: string,
  cleanup: CleanupStack,
  label: string,
  binary: string,
  o: PassthroughLlOptions,
): Promise<BenchTarget> {
  return startDaemon(workRoot, cleanup, label, (src, mnt) => ({
    command: binary,
    args: ['-f', ...(o.singleThreaded ? ['-s'] : []), '-o', `source=${src},${o.options}`, mnt],
    cpu: o.cpu,
    announces: false,
  }));
}

interface DaemonSpec {
  command: string;
  args: string[];
  cpu: number | undefined;
  /** Prints `mounted MNT` when usable (our CLI's contract). */
  announces: boolean;
}

async function startDaemon(
  workRoot: string,
  cleanup: CleanupStack,
  label: string,
  spec: (src: string, mnt: string) => DaemonSpec,
): Promise<BenchTarget> {
  const base = mkdtempSync(join(workRoot, 'mount-'));
  const src = join(base, 'src');
  const mnt = join(base, 'mnt');
  mkdirSync(src);
  mkdirSync(mnt);
  const s = spec(src, mnt);
  const [cmd, args] = pinned(s.command, s.args, s.cpu);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  let stdoutLine = '';
  let announced = false;
  const keep = (chunk: Buffer): void => {
    log = (log + chunk.toString('utf8')).slice(-LOG_TAIL_CHARS);
  };
  child.stderr.on('data', keep);
  child.stdout.on('data', (chunk: Buffer) => {
    keep(chunk);
    if (announced) return;
    stdoutLine += chunk.toString('utf8');
    const lines = stdoutLine.split('\n');
    stdoutLine = lines.pop() ?? '';
    announced = lines.some((l) => l.trim() === `mounted ${mnt}`);
  });
  const exited = new Promise<string>((resolve) => {
    child.on('exit', (code, signal) => resolve(String(code ?? signal)));
    child.on('error', (err) => resolve(`spawn error: ${err.message}`));
  });
  let exitStatus: string | null = null;
  void exited.then((status) => (exitStatus = status));

  const stop = cleanup.push(`stop ${label} and unmount ${mnt}`, async () => {
    await stopDaemon(child, exited, mnt);
    rmSync(base, { recursive: true, force: true });
  });

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!((announced || !s.announces) && isMounted(mnt))) {
    if (exitStatus !== null) {
      await stop();
      throw new MountError(`${label} exited (${exitStatus}) before mounting`, log);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new MountError(`${label} did not mount within ${START_TIMEOUT_MS} ms`, log);
    }
    await sleep(20);
  }
  const failure = (): string | null =>
    exitStatus === null ? null : `${label} exited (${exitStatus}); output: ${log.trim().split('\n').slice(-2).join(' | ')}`;
  return { label, dir: mnt, stop, failure };
}

/**
 * SIGTERM, which both daemons answer by unmounting and exiting; then, for
 * whatever is left, `umount`, `umount -l` and SIGKILL, so nothing outlives the run.
 */
async function stopDaemon(child: ChildProcess, exited: Promise<string>, mnt: string): Promise<void> {
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  if (running()) child.kill('SIGTERM');
  const outcome = await Promise.race([exited, sleep(STOP_TIMEOUT_MS).then(() => 'timeout')]);
  if (isMounted(mnt)) spawnSync('umount', [mnt], { stdio: 'ignore' });
  if (isMounted(mnt)) spawnSync('umount', ['-l', mnt], { stdio: 'ignore' });
  if (running()) {
    child.kill('SIGKILL');
    await exited;
  }
  if (outcome === 'timeout') process.stderr.write(`warning: daemon for ${mnt} ignored SIGTERM for ${STOP_TIMEOUT_MS} ms; killed\n`);
  if (isMounted(mnt)) throw new Error(`${mnt} is still mounted after umount -l`);
}

/** Whether the kernel lists `dir` as a mount point (mountinfo escapes spaces etc. as octal). */
export function isMounted(dir: string): boolean {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    if (field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))) === dir) return true;
  }
  return false;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
