/**
 * `litefs mount [-config PATH] [-no-expand-env] [-fuse.debug] [-debug] [-- CMD ARGS]`
 * (ref §12.3) with a static lease: load litefs.yml, create the data
 * directory (and, on the primary, the cluster id), listen on `http.addr`
 * (before mounting, so a port conflict fails fast), mount `fuse.dir` with the
 * LiteFS file system (the FUSE worker opens the store and recovers every
 * database first), print `mounted <fuse.dir>`, serve the node API; a replica
 * (`lease.candidate: false`) then follows the primary at
 * `lease.advertise-url` and waits for its first catch-up unless `skip-sync`;
 * then run `exec` (ref §12.4).
 * Exits on SIGINT/SIGTERM (forwarded to the exec'd process first) or when the
 * exec'd process exits (its code becomes ours). Shutdown order as LiteFS:
 * HTTP server, then FUSE unmount.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { register } from 'prom-client';
import { FuseMount } from '../fuse/mount.js';
import { configureLogLines, writeStderrLine } from '../fuse/stderr-line.js';
import { DEFAULT_INIT_FLAGS } from '../fuse/session.js';
import { InitFlag } from '../fuse/abi.js';
import { NotPrimaryError } from '../http/api.js';
import type { BackupClient } from '../backup/client.js';
import { FileBackupClient } from '../backup/file.js';
import { S3BackupClient, parseS3URL } from '../backup/s3.js';
import { ProxyServer, type ProxyOptions } from '../http/proxy/server.js';
import { ApiServer } from '../http/server.js';
import { loadClusterID } from '../node/cluster-id.js';
import { formatHex16 } from '../ltx/index.js';
import { BackupStreamer, type BackupReport } from '../node/backup-streamer.js';
import { nodeMetrics, type NodeMetrics } from '../node/metrics.js';
import { ClusterNode } from '../node/cluster-node.js';
import { parseListenAddr } from '../node/http-addr.js';
import { LeaseLoop } from '../node/lease-loop.js';
import { DataDirTransfer } from '../node/data-dir-transfer.js';
import { ChannelImageLocks } from '../node/image-spool.js';
import { GroupSyncTimer } from '../node/group-sync-timer.js';
import { GroupSyncer } from '../node/group-syncer.js';
import { proxyNodeOf } from '../node/proxy-node.js';
import { HaltClient } from '../node/halt-client.js';
import { HaltService } from '../node/halt-service.js';
import { LocalHalts } from '../node/local-halt.js';
import { StoreChannel } from '../node/store-channel.js';
import { TxEventPacer } from '../node/tx-event-pacer.js';
import type { StoreEvent, StoreOptions } from '../store/messages.js';
import { createLeaser } from './leaser.js';
import { promoteSelf } from './promote.js';
import { ConfigError, type Config } from './config.js';
import { loadConfigFile } from './config-file.js';
import { execFromArgs, planExec, runExec, waitForExit } from './exec.js';
import { FlagError, flagUsage, parseFlags, type FlagSpec } from './flags.js';

const FLAGS: FlagSpec[] = [
  { name: 'config', kind: 'string', usage: 'config file path' },
  { name: 'no-expand-env', kind: 'boolean', usage: 'do not expand env vars in config' },
  { name: 'fuse.debug', kind: 'boolean', usage: 'print all FUSE requests' },
  { name: 'debug', kind: 'boolean', usage: 'print debug information' },
];

/** Exit code when the store hit an error it could not report to SQLite (LiteFS's 99). */
const FATAL_EXIT = 99;

/** Time an exec'd process gets to exit after SIGTERM when the mount stops under it. */
const EXEC_STOP_GRACE_MS = 5000;

function delay(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms).unref());
}

/** Why the daemon stops. */
type Stop = { readonly kind: 'signal'; readonly signal: NodeJS.Signals } | { readonly kind: 'child'; readonly code: number } | { readonly kind: 'fuse' };

export async function runMount(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, FLAGS);
  if (flags.positional.length > 0) throw new FlagError(`usage: litefs mount [flags] [-- CMD ARGS]\n${flagUsage(FLAGS)}`);
  const { config } = loadConfigFile({ path: flags.strings.get('config'), noExpandEnv: flags.booleans.get('no-expand-env') === true });
  // log.format and log.timestamp shape every line, this thread's and the FUSE threads'.
  configureLogLines(config.log);
  const log = (line: string): void => writeStderrLine(line);
  const execEntries = flags.afterDoubleDash !== undefined && flags.afterDoubleDash.length > 0 ? execFromArgs(flags.afterDoubleDash) : config.exec;
  const commands = planExec(execEntries, config.lease.candidate);
  const listenAddr = parseListenAddr(config.http.addr);
  const fuseDir = resolve(config.fuse.dir);
  const dataDir = resolve(config.data.dir);
  // The FUSE thread does its I/O on the data directory: inside the mount it would wait for itself.
  if (dataDir === fuseDir || dataDir.startsWith(fuseDir + sep)) {
    throw new ConfigError(`data directory ${dataDir} must not be inside the fuse directory ${fuseDir}`);
  }
  mkdirSync(dataDir, { recursive: true });
  // <data>/tmp holds only files in flight (received LTX bodies, import images): none survives a restart.
  rmSync(join(dataDir, 'tmp'), { recursive: true, force: true });
  const debug = flags.booleans.get('debug') === true || config.log.debug;
  const nodeName = config.lease.hostname !== '' ? config.lease.hostname : hostname();

  let stopWith: (stop: Stop) => void = () => {};
  const stopped = new Promise<Stop>((res) => (stopWith = res));
  const onSignal = (signal: NodeJS.Signals): void => stopWith({ kind: 'signal', signal });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // Imports and applies run on the FUSE thread; `mount` is assigned before the API can receive one.
  let mount: FuseMount | undefined;
  const channel = new StoreChannel((cmd) => {
    if (mount === undefined) throw new NotPrimaryError('not mounted yet');
    mount.send(cmd);
  });
  // Snapshots and exports copy a database under its read locks, held by the FUSE thread.
  const images = new ChannelImageLocks(channel);
  const transfer = new DataDirTransfer(dataDir, channel, (ino) => mount?.invalInode(ino) ?? Promise.resolve(), images);
  // HALT locks this node grants while primary (ref §8.2); `node` is assigned before the API serves one.
  const halt = new HaltService({
    channel,
    dataDir,
    isPrimary: () => node.role === 'primary',
    position: (db) => node.position(db),
    isStreaming: (id) => node.replication.isStreaming(id),
    log,
  });
  // The lease loop decides the role; the cluster id is made by the first primary or adopted (ref §7.1).
  const node: ClusterNode = new ClusterNode({
    dataDir,
    clusterID: loadClusterID(dataDir),
    hostname: nodeName,
    candidate: config.lease.candidate,
    registry: register,
    transfer,
    images,
    halt,
    localHalts: new LocalHalts(channel),
    compress: config.data.compress,
    log,
  });
  // HALT locks this node takes on the primary while replica (ref §8.4).
  const haltClient = new HaltClient({
    tell: (cmd) => channel.tell(cmd),
    primaryURL: () => node.knownPrimary?.advertiseURL ?? null,
    nodeID: node.nodeID,
    clusterID: () => node.clusterID(),
    position: (db) => node.position(db),
    changed: (ms) => node.changed(ms),
    log,
  });
  const server = new ApiServer({
    node,
    // LiteFS: a snapshot sent to a replica may take this long; 0 means data.retention.
    snapshotTimeoutMs: config.http.snapshotTimeoutMs > 0 ? config.http.snapshotTimeoutMs : config.data.retentionMs,
    log,
  });
  const addr = await server.listen(listenAddr.port, listenAddr.host);
  log(`http server listening on: ${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`);
  const leaser = createLeaser(config, nodeName, addr.port);

  const options: StoreOptions = {
    dataDir,
    compress: config.data.compress,
    strictVerify: config.strictVerify,
    nodeId: nodeName,
    retentionMs: config.data.retentionMs,
    retentionMonitorIntervalMs: config.data.retentionMonitorIntervalMs,
    retentionMaxBytes: config.data.retentionMaxBytes,
    // Writable only once the lease loop says this node is the primary.
    startAsReplica: true,
  };
  let fatal = false;
  try {
    mount = await FuseMount.mount({
      mountpoint: fuseDir,
      workerScript: new URL('../fs/worker.js', import.meta.url),
      workerData: options,
      fsName: 'litefs',
      fsType: 'litefs',
      allowOther: config.fuse.allowOther,
      debug: flags.booleans.get('fuse.debug') === true || config.fuse.debug,
      // Plain READDIR: the root lists a handful of generated names.
      initFlags: DEFAULT_INIT_FLAGS & ~(InitFlag.DO_READDIRPLUS | InitFlag.READDIRPLUS_AUTO),
      handleSignals: false,
      log,
      logFormat: config.log,
    });
  } catch (err) {
    await server.close();
    throw err;
  }
  const fuse = mount;
  // No transaction waits more than a second for its group sync (ARCHITECTURE §7);
  // the FUSE thread hands the groups to the syncer thread.
  const syncer = new GroupSyncer((cmd) => channel.tell(cmd), log);
  const groupSync = new GroupSyncTimer(() => {
    try {
      channel.tell({ type: 'sync' });
    } catch {
      // Unmounting: the FUSE thread syncs every group at unmount anyway.
    }
  });
  const txPacer = new TxEventPacer({
    wantsEveryTx: () => node.wantsEveryTx(),
    tell: (cmd) => {
      try {
        channel.tell(cmd);
      } catch {
        // Unmounting: nothing is held back then that anyone waits for.
      }
    },
  });
  // The store recovered every database before the mount answered; LTX files it wrote then came without events.
  node.reloadPositions();
  fuse.on('message', (msg: unknown) => {
    const event = msg as StoreEvent;
    if (event.type === 'commandResult') return channel.onResult(event);
    if (event.type === 'haltRequest' || event.type === 'haltForward' || event.type === 'haltRelease') return haltClient.onEvent(event);
    node.onStoreEvent(event);
    if (event.type === 'tx') {
      groupSync.onTx();
      txPacer.onTx();
    }
    if (event.type === 'groupSync') syncer.run(event.jobs);
    if (event.type === 'tx' && debug) log(`tx db=${event.db} txid=${event.txid} checksum=${event.checksum} pages=${event.pages}`);
    if (event.type === 'quarantine') log(`quarantine: ${event.db}: ${event.reason}: local data copied to ${event.dir} before a snapshot from the primary replaced it`);
    if (event.type === 'fatal') {
      log(`FATAL: ${event.db}: ${event.message}; stopping`);
      fatal = true;
      stopWith({ kind: 'fuse' });
    }
  });
  fuse.once('closed', () => {
    channel.close('the FUSE thread stopped');
    stopWith({ kind: 'fuse' });
  });

  const leasing = new AbortController();
  void stopped.then(() => leasing.abort());
  const loop = new LeaseLoop({
    leaser,
    node,
    channel,
    dataDir,
    reconnectDelayMs: config.lease.reconnectDelayMs,
    demoteDelayMs: config.lease.demoteDelayMs,
    databases: config.lease.databases,
    log,
    debug,
    onRoleChange: (role, reason) => node.countRoleChange(role, reason),
  });
  const looping = loop.run(leasing.signal);
  // Backups run on the main thread whenever this node is primary (ref §11.2).
  const backupClient: BackupClient | undefined = config.backup.type === 'file' ? new FileBackupClient(config.backup.path) : config.backup.type === 's3' ? new S3BackupClient(parseS3URL(config.backup.url), undefined, join(dataDir, 'tmp')) : undefined;
  const backingUp =
    backupClient !== undefined
      ? new BackupStreamer({
          client: backupClient,
          source: node.replication,
          isPrimary: () => node.role === 'primary',
          changed: (ms) => node.changed(ms),
          compress: config.data.compress,
          snapshotIntervalMs: config.backup.snapshotIntervalMs,
          log,
          report: backupMetrics(nodeMetrics(register, false)),
          setHWM: (db, txid) => {
            try {
              channel.tell({ type: 'backupHWM', db, txid: txid === null ? null : formatHex16(txid) });
            } catch {
              // Unmounting: retention no longer runs.
            }
          },
        }).run(leasing.signal)
      : Promise.resolve();
  // A static primary is primary at once: be writable before saying `mounted`.
  if (config.lease.type === 'static' && config.lease.candidate) await Promise.race([node.ready, stopped]);
  process.stdout.write(`mounted ${fuseDir}\n`);
  if (!config.skipSync) {
    if (!config.lease.candidate || config.lease.type !== 'static') log('waiting to become primary or to catch up with the primary');
    await Promise.race([node.ready, stopped]);
  }
  let exitCode = 0;
  let proxy: ProxyServer | undefined;
  /**
   * A start-up step after the mount failed (lease.promote, an exec command).
   * exit-on-error (the default): stop and exit 1. Otherwise stay up, mounted
   * and serving, so the machine can be looked at; a signal stops it (ref §12.3).
   * The proxy closes either way, as LiteFS's: no application stands behind it.
   */
  const startupError = (message: string): void => {
    log(`ERROR: ${message}`);
    void proxy?.close();
    proxy = undefined;
    if (!config.exitOnError) {
      log('exit-on-error is false: litefs keeps running; stop it with SIGINT or SIGTERM');
      return;
    }
    exitCode = 1;
    stopWith({ kind: 'fuse' });
  };
  // lease.promote (ref §12.3 step 9): a candidate asks the primary to hand over, and waits to be primary.
  if (config.lease.promote && config.lease.candidate && node.role !== 'primary') {
    await promoteSelf(node, log, stopped).catch((err: unknown) => startupError(`promote: ${err instanceof Error ? err.message : String(err)}`));
  }

  // The proxy starts once the node is ready, before the application (ref §12.3 step 10).
  if (exitCode === 0 && config.proxy.target !== '') {
    const server = new ProxyServer(proxyNodeOf(node, channel), proxyOptions(config, log));
    try {
      const at = await server.listen();
      proxy = server;
      log(`proxy listening on: ${at.address.includes(':') ? `[${at.address}]` : at.address}:${at.port}`);
    } catch (err) {
      startupError(`proxy: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  let child: ChildProcess | undefined;
  const execAbort = new AbortController();
  void stopped.then(() => execAbort.abort());
  try {
    // Nothing to start once a failed step stops the daemon.
    if (exitCode === 0) child = await runExec(commands, execAbort.signal);
    if (child !== undefined) {
      const running = child;
      log(`waiting for signal or subprocess to exit`);
      void waitForExit(running).then(
        (code) => stopWith({ kind: 'child', code }),
        () => stopWith({ kind: 'child', code: 1 }),
      );
    }
  } catch (err) {
    if (!execAbort.signal.aborted) startupError(err instanceof Error ? err.message : String(err));
  }

  const stop = await stopped;
  if (stop.kind === 'signal' && child !== undefined && child.exitCode === null && child.signalCode === null) {
    log(`signal received, forwarding ${stop.signal} to subprocess`);
    child.kill(stop.signal);
    await waitForExit(child).catch(() => 1);
  }
  if (stop.kind === 'fuse' && child !== undefined && child.exitCode === null && child.signalCode === null) {
    // The mount is gone under the application: stop it (LiteFS cancels its context, killing it).
    child.kill('SIGTERM');
    const code = await Promise.race([waitForExit(child).catch(() => 1), delay(EXEC_STOP_GRACE_MS).then(() => undefined)]);
    if (code === undefined) child.kill('SIGKILL');
  }
  if (stop.kind === 'child') {
    log(`subprocess exited with ${stop.code}, litefs shutting down`);
    exitCode = stop.code;
  }
  leasing.abort();
  await looping;
  await haltClient.close();
  halt.close();
  await backingUp;
  backupClient?.close?.();
  await leaser.close().catch(() => undefined);
  groupSync.close();
  txPacer.close();
  // LiteFS's order: proxy, HTTP server, FUSE unmount.
  await proxy?.close();
  node.close();
  await server.close();
  await fuse.close();
  await syncer.close();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  return fatal ? FATAL_EXIT : exitCode;
}

/**
 * The proxy's settings. A replica forwards writes to the primary's proxy,
 * except on Fly.io (FLY_APP_NAME set), where it answers with `fly-replay`
 * as LiteFS does and Fly's edge replays the request on the primary.
 */
function proxyOptions(config: Config, log: (line: string) => void): ProxyOptions {
  const p = config.proxy;
  const listen = parseListenAddr(p.addr, 'proxy.addr');
  const target = parseListenAddr(p.target, 'proxy.target');
  return {
    host: listen.host,
    port: listen.port,
    target: { host: target.host ?? 'localhost', port: target.port },
    db: p.db,
    maxLagMs: p.maxLagMs,
    passthrough: p.passthrough,
    alwaysForward: p.alwaysForward,
    primaryRedirectTimeoutMs: p.primaryRedirectTimeoutMs,
    readTimeoutMs: p.readTimeoutMs,
    readHeaderTimeoutMs: p.readHeaderTimeoutMs,
    writeTimeoutMs: p.writeTimeoutMs,
    idleTimeoutMs: p.idleTimeoutMs,
    writes: (process.env['FLY_APP_NAME'] ?? '') !== '' ? 'fly-replay' : 'forward',
    debug: p.debug,
    log,
  };
}

/** The backup loop's reports as litefs_backup_* metrics. */
function backupMetrics(m: NodeMetrics): BackupReport {
  return {
    position: (db, txid) => m.backupTXID.set({ db }, Number(txid)),
    uploaded: (db, kind) => m.backupUploadCount.inc({ db, kind }),
    failed: () => m.backupErrorCount.inc(),
  };
}
