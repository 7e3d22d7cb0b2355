/**
 * `litefs mount [-config PATH] [-no-expand-env] [-fuse.debug] [-debug]`
 * (ref §12.3), the single-node slice: load litefs.yml, create the data
 * directory, mount `fuse.dir` with the LiteFS file system (the FUSE worker
 * opens the store and recovers every database first), print
 * `mounted <fuse.dir>`, and unmount and exit 0 on SIGINT/SIGTERM. No HTTP
 * server, lease loop or exec supervisor yet.
 */
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve, sep } from 'node:path';
import { FuseMount } from '../fuse/mount.js';
import { DEFAULT_INIT_FLAGS } from '../fuse/session.js';
import { InitFlag } from '../fuse/abi.js';
import type { StoreEvent, StoreOptions } from '../store/messages.js';
import { ConfigError } from './config.js';
import { loadConfigFile } from './config-file.js';
import { FlagError, flagUsage, parseFlags, type FlagSpec } from './flags.js';

const FLAGS: FlagSpec[] = [
  { name: 'config', kind: 'string', usage: 'config file path' },
  { name: 'no-expand-env', kind: 'boolean', usage: 'do not expand env vars in config' },
  { name: 'fuse.debug', kind: 'boolean', usage: 'print all FUSE requests' },
  { name: 'debug', kind: 'boolean', usage: 'print debug information' },
];

/** Exit code when the store hit an error it could not report to SQLite (LiteFS's 99). */
const FATAL_EXIT = 99;

export async function runMount(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, FLAGS);
  if (flags.positional.length > 0) throw new FlagError(`usage: litefs mount [flags]\n${flagUsage(FLAGS)}`);
  const { config } = loadConfigFile({ path: flags.strings.get('config'), noExpandEnv: flags.booleans.get('no-expand-env') === true });
  if (config.lease.type !== 'static' || !config.lease.candidate) {
    throw new ConfigError('not supported yet: only lease.type static with candidate true (a single primary)');
  }
  // Valid settings whose feature this build lacks stop start-up rather than
  // being ignored: an application that expects to be started, or a disk
  // bound, must not silently get neither.
  if (config.exec.length > 0 || flags.afterDoubleDash !== undefined) throw new ConfigError('not supported yet: exec');
  if (config.data.retentionMaxBytes > 0) throw new ConfigError('not supported yet: data.retention-max-bytes');
  const fuseDir = resolve(config.fuse.dir);
  const dataDir = resolve(config.data.dir);
  // The FUSE thread does its I/O on the data directory: inside the mount it
  // would wait for itself.
  if (dataDir === fuseDir || dataDir.startsWith(fuseDir + sep)) {
    throw new ConfigError(`data directory ${dataDir} must not be inside the fuse directory ${fuseDir}`);
  }
  mkdirSync(dataDir, { recursive: true });
  console.error('litefs: LTX retention is not built yet: every LTX file is kept (data.retention has no effect)');
  const debug = flags.booleans.get('debug') === true || config.log.debug;
  const options: StoreOptions = {
    dataDir,
    compress: config.data.compress,
    strictVerify: config.strictVerify,
    nodeId: config.lease.hostname !== '' ? config.lease.hostname : hostname(),
  };
  let fatal = false;
  const mount = await FuseMount.mount({
    mountpoint: fuseDir,
    workerScript: new URL('../fs/worker.js', import.meta.url),
    workerData: options,
    fsName: 'litefs',
    fsType: 'litefs',
    allowOther: config.fuse.allowOther,
    debug: flags.booleans.get('fuse.debug') === true || config.fuse.debug,
    // Plain READDIR: the root lists a handful of generated names.
    initFlags: DEFAULT_INIT_FLAGS & ~(InitFlag.DO_READDIRPLUS | InitFlag.READDIRPLUS_AUTO),
    log: (line) => console.error(line),
  });
  mount.on('message', (msg: unknown) => {
    const event = msg as StoreEvent;
    if (event.type === 'tx' && debug) console.error(`tx db=${event.db} txid=${event.txid} checksum=${event.checksum} pages=${event.pages}`);
    if (event.type === 'fatal') {
      console.error(`FATAL: ${event.db}: ${event.message}; stopping`);
      fatal = true;
      void mount.close();
    }
  });
  const closed = new Promise<void>((res) => mount.once('closed', res));
  process.stdout.write(`mounted ${fuseDir}\n`);
  await closed;
  return fatal ? FATAL_EXIT : 0;
}
