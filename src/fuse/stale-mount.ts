/**
 * Finding and clearing a dead mount left at a path, e.g. by a daemon killed
 * with SIGKILL: the path is still in the mount table but every access fails
 * with ENOTCONN ("Transport endpoint is not connected").
 */
import { existsSync, promises as fsp, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { runCommand } from './commands.js';
import { errorCode } from './errors.js';

export interface MountEntry {
  readonly mountId: number;
  readonly major: number;
  readonly minor: number;
  readonly mountpoint: string;
  readonly fstype: string;
  readonly source: string;
}

/** Undoes mountinfo's octal escapes (\040 = space, \011 tab, \012 newline, \134 backslash). */
function unescapeField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses /proc/self/mountinfo text; lines that do not fit are skipped. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0 || sep + 2 >= f.length) continue;
    const [maj, min] = (f[2] ?? '').split(':');
    out.push({
      mountId: Number(f[0]),
      major: Number(maj),
      minor: Number(min),
      mountpoint: unescapeField(f[4] ?? ''),
      fstype: f[sep + 1] ?? '',
      source: unescapeField(f[sep + 2] ?? ''),
    });
  }
  return out;
}

/** The top-most mount at `path` (absolute, not resolved through symlinks), if any. */
export function findMount(path: string): MountEntry | undefined {
  const abs = resolve(path);
  const entries = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
  let found: MountEntry | undefined;
  for (const e of entries) if (e.mountpoint === abs) found = e;
  return found;
}

/** 'hung': a daemon still holds the connection but does not answer. */
export type MountState = 'none' | 'live' | 'stale' | 'hung';

/**
 * Whether a FUSE mount at `path` is alive. A stat that fails with ENOTCONN
 * or ECONNABORTED is stale (the daemon is gone); one that does not answer
 * within `timeoutMs` is hung (stopped or deadlocked daemon).
 */
export async function mountState(path: string, timeoutMs = 2000): Promise<MountState> {
  const entry = findMount(path);
  if (entry === undefined || !entry.fstype.startsWith('fuse')) return 'none';
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((res) => {
    timer = setTimeout(() => res('timeout'), timeoutMs);
  });
  try {
    const r = await Promise.race([fsp.stat(entry.mountpoint).then(() => 'ok' as const), timeout]);
    return r === 'ok' ? 'live' : 'hung';
  } catch (err) {
    const code = errorCode(err);
    return code === 'ENOTCONN' || code === 'ECONNABORTED' ? 'stale' : 'live';
  } finally {
    clearTimeout(timer);
  }
}

const FUSECTL = '/sys/fs/fuse/connections';

/**
 * Aborts the FUSE connection behind a mount through fusectl (the connection
 * is named by the minor of the mount's device number). Mounts fusectl for
 * the purpose if it is not mounted, and unmounts it again afterwards.
 */
export async function abortConnection(entry: MountEntry): Promise<boolean> {
  if (!existsSync(FUSECTL)) return false;
  let mountedHere = false;
  if (readdirSync(FUSECTL).length === 0) {
    mountedHere = (await runCommand('mount', ['-t', 'fusectl', 'fusectl', FUSECTL])).code === 0;
  }
  try {
    const abort = `${FUSECTL}/${entry.minor}/abort`;
    if (!existsSync(abort)) return false;
    writeFileSync(abort, '1');
    return true;
  } catch {
    return false;
  } finally {
    if (mountedHere) await runCommand('umount', [FUSECTL]);
  }
}

/**
 * Clears a stale FUSE mount at `path`: `umount`, then `umount -l`, then an
 * abort of the connection through fusectl followed by `umount -l` as the
 * last resort (a hung mount is aborted first). Returns true if a stale mount
 * was found and removed; throws if it could not be removed. A live mount is
 * left alone (false).
 */
export async function clearStaleMount(path: string, log: (line: string) => void = () => {}): Promise<boolean> {
  const state = await mountState(path);
  if (state !== 'stale' && state !== 'hung') return false;
  const abs = resolve(path);
  log(`clearing ${state} FUSE mount at ${abs}`);
  const gone = (): boolean => findMount(abs)?.fstype.startsWith('fuse') !== true;
  if (state === 'hung') {
    // Cut the connection first: it fails every waiting request (ours
    // included) and lets the unmount through.
    const entry = findMount(abs);
    if (entry !== undefined) await abortConnection(entry);
  }
  for (const args of [[abs], ['-l', abs]]) {
    const r = await runCommand('umount', args);
    if (gone()) return true;
    log(`umount ${args.join(' ')} failed: ${r.stderr}`);
  }
  const entry = findMount(abs);
  if (entry !== undefined && (await abortConnection(entry))) {
    await runCommand('umount', ['-l', abs]);
    if (gone()) return true;
  }
  throw new Error(`cannot clear the stale mount at ${abs}`);
}
