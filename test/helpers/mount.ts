import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

/**
 * Where a FUSE-suite scenario runs: a plain folder on the host file system
 * (the reference: ext4 or overlay here) or a passthrough mount of a fresh
 * folder served by `litefs passthrough` in a child process.
 */
export type TargetKind = 'plain' | 'mount';

export interface Target {
  readonly kind: TargetKind;
  /** The folder the scenario works in. */
  readonly dir: string;
  /** For a mount: the folder it passes through to; null for a plain folder. */
  readonly source: string | null;
  /** Unmount (for a mount) and delete the temporary folders. Idempotent. */
  close(): Promise<void>;
}

export interface PassthroughOptions {
  attrTimeout?: number;
  entryTimeout?: number;
  negativeTimeout?: number;
  keepCache?: boolean;
  allowOther?: boolean;
  debug?: boolean;
}

/** The plain folder comes first: it is the reference the mount is compared with. */
const DEFAULT_KINDS: readonly TargetKind[] = ['plain', 'mount'];

/**
 * The kinds every comparative scenario runs on. LITEFS_FUSE_TARGETS
 * (comma-separated) overrides it, e.g. `plain` to validate a scenario alone.
 */
export function targetKinds(): TargetKind[] {
  const env = process.env.LITEFS_FUSE_TARGETS;
  if (env === undefined || env === '') return [...DEFAULT_KINDS];
  const kinds = env.split(',').map((s) => s.trim());
  for (const k of kinds) {
    if (k !== 'plain' && k !== 'mount') throw new Error(`LITEFS_FUSE_TARGETS: unknown target kind ${k}`);
  }
  return kinds as TargetKind[];
}

export async function openTarget(kind: TargetKind, options: PassthroughOptions = {}): Promise<Target> {
  return kind === 'plain' ? plainFolder() : mountPassthrough(options);
}

/** A fresh empty folder under os.tmpdir(). */
export function plainFolder(): Target {
  const dir = mkdtempSync(join(tmpdir(), 'litefs-plain-'));
  let closed = false;
  return {
    kind: 'plain',
    dir,
    source: null,
    close: async () => {
      if (closed) return;
      closed = true;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Mount folders are os.tmpdir()/litefs-fuse-<pid of the test process>-XXXXXX,
 * so a teardown check can tell a leaked mount (its test process is gone) from
 * one a concurrently running suite still uses.
 */
export const MOUNT_DIR_PREFIX = 'litefs-fuse-';

/** The test process that created a mount folder, from its name; null if not ours. */
export function mountDirOwner(path: string): number | null {
  const prefix = join(tmpdir(), MOUNT_DIR_PREFIX);
  if (!path.startsWith(prefix)) return null;
  const m = /^(\d+)-/.exec(path.slice(prefix.length));
  return m === null ? null : Number(m[1]);
}

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
/** Keep this much of the daemon's output for failure messages. */
const LOG_TAIL_BYTES = 16 * 1024;

export class MountError extends Error {
  constructor(message: string, readonly log: string) {
    super(`${message}\n--- passthrough output (tail) ---\n${log}`);
    this.name = 'MountError';
  }
}

/**
 * Starts `node dist/src/cli/main.js passthrough SRC MNT` on fresh folders and
 * resolves once it printed `mounted MNT` and the kernel lists MNT as a mount.
 * The returned close() stops it with SIGTERM and asserts MNT is gone; on any
 * failure it falls back to `umount -l` and SIGKILL so no mount outlives the
 * test, then throws.
 */
export function mountPassthrough(options: PassthroughOptions = {}): Promise<Target> {
  const cli = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
  return mountDaemon((src, mnt) => [process.execPath, [cli, 'passthrough', ...flagArgs(options), src, mnt]]);
}

export interface DaemonTimeouts {
  /** Until `mounted` is printed and the mount listed. Default 15 s. */
  startMs?: number;
  /** From SIGTERM until exit. Default 10 s. */
  stopMs?: number;
}

/** Argv of a daemon that mounts `mnt` showing `src` and follows the passthrough contract. */
export type DaemonCommand = (src: string, mnt: string) => [string, string[]];

/**
 * Runs any daemon that follows the passthrough command's contract (prints
 * `mounted <MNT>` once usable, unmounts and exits 0 on SIGTERM). Exported so
 * the helper's own failure handling can be tested with a stand-in daemon.
 */
export async function mountDaemon(command: DaemonCommand, timeouts: DaemonTimeouts = {}): Promise<Target> {
  const startMs = timeouts.startMs ?? START_TIMEOUT_MS;
  const stopMs = timeouts.stopMs ?? STOP_TIMEOUT_MS;
  const base = mkdtempSync(join(tmpdir(), `${MOUNT_DIR_PREFIX}${process.pid}-`));
  const src = join(base, 'src');
  const mnt = join(base, 'mnt');
  mkdirSync(src);
  mkdirSync(mnt);

  const [cmd, args] = command(src, mnt);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = new OutputTail();
  child.stderr.on('data', (chunk: Buffer) => log.add(chunk));
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    child.on('error', (err) => resolve(`spawn error: ${err.message}`));
  });

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    try {
      await stopDaemon(child, exited, mnt, log, stopMs);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  };

  try {
    await waitForMounted(child, exited, mnt, log, startMs);
  } catch (err) {
    forceCleanup(child, mnt);
    closed = true;
    rmSync(base, { recursive: true, force: true });
    throw err;
  }
  return { kind: 'mount', dir: mnt, source: src, close };
}

function flagArgs(o: PassthroughOptions): string[] {
  const out: string[] = [];
  if (o.attrTimeout !== undefined) out.push('-attr-timeout', String(o.attrTimeout));
  if (o.entryTimeout !== undefined) out.push('-entry-timeout', String(o.entryTimeout));
  if (o.negativeTimeout !== undefined) out.push('-negative-timeout', String(o.negativeTimeout));
  if (o.keepCache === true) out.push('-keep-cache');
  if (o.allowOther === true) out.push('-allow-other');
  if (o.debug === true) out.push('-debug');
  return out;
}

async function waitForMounted(
  child: ChildProcess,
  exited: Promise<number | string>,
  mnt: string,
  log: OutputTail,
  startMs: number,
): Promise<void> {
  const announced = new Promise<void>((resolve) => {
    let pending: string | null = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      log.add(chunk);
      if (pending === null) return;
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      if (lines.some((l) => l.trim() === `mounted ${mnt}`)) {
        pending = null;
        resolve();
      }
    });
  });
  const deadline = Date.now() + startMs;
  const outcome = await Promise.race([
    announced.then(() => 'announced' as const),
    exited.then((code) => ({ exitedWith: code })),
    sleep(startMs).then(() => 'timeout' as const),
  ]);
  if (outcome === 'timeout') throw new MountError(`daemon did not print "mounted ${mnt}" within ${startMs} ms`, log.text());
  if (typeof outcome === 'object') throw new MountError(`daemon exited (${outcome.exitedWith}) before mounting ${mnt}`, log.text());
  // The line may come a moment before the kernel lists the mount.
  while (!isMounted(mnt)) {
    if (Date.now() > deadline) throw new MountError(`${mnt} announced but not in /proc/self/mountinfo`, log.text());
    await sleep(20);
  }
}

async function stopDaemon(
  child: ChildProcess,
  exited: Promise<number | string>,
  mnt: string,
  log: OutputTail,
  stopMs: number,
): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const code = await Promise.race([exited, sleep(stopMs).then(() => 'timeout')]);
  const stillMounted = isMounted(mnt);
  if (code === 0 && !stillMounted) return;
  forceCleanup(child, mnt);
  const what = code === 'timeout' ? `did not exit within ${stopMs} ms of SIGTERM` : `exited with ${code}`;
  throw new MountError(
    `daemon ${what}${stillMounted ? `; ${mnt} was still mounted (lazily unmounted now)` : ''}`,
    log.text(),
  );
}

/** Last resort: detach the mount and kill the daemon, ignoring failures. */
function forceCleanup(child: ChildProcess, mnt: string): void {
  if (isMounted(mnt)) spawnSync('umount', ['-l', mnt], { stdio: 'ignore' });
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

export interface MountEntry {
  mountPoint: string;
  fsType: string;
}

/** The mounts this process sees, from /proc/self/mountinfo (octal escapes decoded). */
export function mountEntries(): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (line === '') continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (sep < 0 || fields.length < sep + 2) continue;
    out.push({ mountPoint: unescapeMountField(fields[4]), fsType: fields[sep + 1] });
  }
  return out;
}

/** Set by scripts/run-tests.mjs: mount points that existed before this test run (not ours to judge). */
export const MOUNTS_BEFORE_ENV = 'LITEFS_TEST_MOUNTS_BEFORE';

/**
 * Mounts a finished suite left behind: any fuse.litefs mount under the
 * temporary folder, and any mount in a folder this project's helpers created,
 * unless it was there before the run started (a dead earlier run's leftovers
 * are not this run's leak) or its test process is still alive (a concurrent
 * run on the same machine).
 */
export function leakedMounts(): MountEntry[] {
  const root = tmpdir();
  const before = new Set<string>(JSON.parse(process.env[MOUNTS_BEFORE_ENV] ?? '[]') as string[]);
  return mountEntries().filter((m) => {
    if (before.has(m.mountPoint)) return false;
    const owner = mountDirOwner(m.mountPoint);
    if (owner !== null) return !processAlive(owner);
    return m.fsType === 'fuse.litefs' && m.mountPoint.startsWith(root + '/');
  });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function isMounted(dir: string): boolean {
  return mountEntries().some((m) => m.mountPoint === dir);
}

function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;

  add(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > LOG_TAIL_BYTES && this.chunks.length > 1) {
      this.size -= (this.chunks.shift() as Buffer).length;
    }
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
