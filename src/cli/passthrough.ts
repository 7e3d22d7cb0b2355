/**
 * `litefs passthrough [flags] SRC MNT`: mounts a FUSE passthrough of SRC at
 * MNT, the test vehicle of the FUSE layer. Prints `mounted <MNT>` once the
 * mount is usable; on SIGINT/SIGTERM unmounts and exits 0.
 */
import { resolve } from 'node:path';
import { statSync } from 'node:fs';
import { FlagError, flagUsage, parseFlags, type FlagSpec } from './flags.js';
import { FuseMount } from '../fuse/mount.js';
import type { PassthroughOptions } from '../fuse/passthrough/fs.js';

const FLAGS: FlagSpec[] = [
  { name: 'attr-timeout', kind: 'string', default: '1', usage: 'seconds the kernel caches attributes' },
  { name: 'entry-timeout', kind: 'string', default: '1', usage: 'seconds the kernel caches names' },
  { name: 'negative-timeout', kind: 'string', default: '1', usage: 'seconds the kernel caches missing names (0 = off)' },
  { name: 'keep-cache', kind: 'boolean', usage: 'keep cached file pages across opens (FOPEN_KEEP_CACHE)' },
  { name: 'allow-other', kind: 'boolean', usage: 'let other users access the mount' },
  { name: 'debug', kind: 'boolean', usage: 'log every FUSE request to stderr' },
];

function seconds(name: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new FlagError(`invalid value "${value ?? ''}" for -${name}: want seconds >= 0`);
  }
  return n;
}

export async function runPassthrough(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, FLAGS);
  if (flags.positional.length !== 2) {
    throw new FlagError(`usage: litefs passthrough [flags] SRC MNT\n${flagUsage(FLAGS)}`);
  }
  const source = resolve(flags.positional[0]!);
  const mountpoint = resolve(flags.positional[1]!);
  if (!statSync(source).isDirectory()) throw new Error(`${source} is not a folder`);
  // A mount inside its own source would make the FUSE thread stat its own
  // mount while serving it: a deadlock.
  if (mountpoint === source || mountpoint.startsWith(`${source}/`) || source === '/') {
    throw new Error(`mount point ${mountpoint} must not be inside the source ${source}`);
  }
  const options: PassthroughOptions = {
    source,
    attrTimeout: seconds('attr-timeout', flags.strings.get('attr-timeout')),
    entryTimeout: seconds('entry-timeout', flags.strings.get('entry-timeout')),
    negativeTimeout: seconds('negative-timeout', flags.strings.get('negative-timeout')),
    keepCache: flags.booleans.get('keep-cache') === true,
  };
  const debug = flags.booleans.get('debug') === true;
  const mount = await FuseMount.mount({
    mountpoint,
    workerScript: new URL('../fuse/passthrough/worker.js', import.meta.url),
    workerData: options,
    fsName: 'passthrough',
    fsType: 'passthrough',
    allowOther: flags.booleans.get('allow-other') === true,
    debug,
    log: (line) => console.error(line),
  });
  const closed = new Promise<void>((res) => mount.once('closed', res));
  process.stdout.write(`mounted ${mountpoint}\n`);
  await closed;
  return 0;
}
