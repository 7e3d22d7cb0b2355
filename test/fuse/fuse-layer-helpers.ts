/**
 * Helpers for the FUSE layer's own real-mount tests: a passthrough mounted
 * in-process through FuseMount (the test's main thread never touches the
 * mount synchronously; children and async fs calls do), and cleanup that
 * always unmounts.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FuseMount } from '../../src/fuse/mount.js';
import type { PassthroughOptions } from '../../src/fuse/passthrough/fs.js';

export interface TempMount {
  readonly dir: string;
  readonly src: string;
  readonly mnt: string;
}

/** A fresh temp folder with src/ and mnt/ inside. */
export function tempMountDirs(prefix: string): TempMount {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const src = join(dir, 'src');
  const mnt = join(dir, 'mnt');
  mkdirSync(src);
  mkdirSync(mnt);
  return { dir, src, mnt };
}

export async function mountPassthrough(t: TempMount, opts: Partial<PassthroughOptions> = {}): Promise<FuseMount> {
  return FuseMount.mount({
    mountpoint: t.mnt,
    workerScript: new URL('../../src/fuse/passthrough/worker.js', import.meta.url),
    workerData: { source: t.src, ...opts } satisfies PassthroughOptions,
    fsName: 'fuse-layer-test',
    fsType: 'fuse-layer-test',
    handleSignals: false,
  });
}

/** True while `path` is a mount point in /proc/mounts. */
export function isMounted(path: string): boolean {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === path);
}

/** Unmounts whatever is left at t.mnt (lazily if need be) and removes the temp folder. */
export function cleanupMount(t: TempMount): void {
  for (let i = 0; i < 3 && isMounted(t.mnt); i++) {
    spawnSync('umount', [t.mnt], { stdio: 'ignore' });
    if (isMounted(t.mnt)) spawnSync('umount', ['-l', t.mnt], { stdio: 'ignore' });
  }
  if (!isMounted(t.mnt)) rmSync(t.dir, { recursive: true, force: true });
}

/** Waits for the next message from the FUSE thread that satisfies `pred`. */
export function nextMessage<T>(mount: FuseMount, pred: (m: unknown) => m is T, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      mount.off('message', on);
      reject(new Error(`no matching message from the FUSE thread within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (m: unknown): void => {
      if (!pred(m)) return;
      clearTimeout(timer);
      mount.off('message', on);
      resolve(m);
    };
    mount.on('message', on);
  });
}
