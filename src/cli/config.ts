/**
 * `litefs.yml`: the LiteFS v0.5.11 schema (ref §12.2) plus our additions
 * (ARCHITECTURE.md §8), strict like LiteFS (unknown keys are errors), and
 * honest about what this build implements: a valid LiteFS key whose feature
 * is not built yet stops start-up with "not supported yet: <key>".
 */
import { parseDocument } from 'yaml';
import { parseS3URL } from '../backup/s3.js';
import { parseListenAddr } from '../node/http-addr.js';
import { parseDuration } from './duration.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface ExecEntry {
  readonly cmd: string;
  readonly ifCandidate: boolean;
}

export interface Config {
  readonly exitOnError: boolean;
  readonly skipSync: boolean;
  readonly strictVerify: boolean;
  readonly exec: readonly ExecEntry[];
  readonly data: {
    readonly dir: string;
    readonly compress: boolean;
    readonly retentionMs: number;
    readonly retentionMonitorIntervalMs: number;
    /** Per-database cap on LTX bytes; 0 = off (ARCHITECTURE.md §8). */
    readonly retentionMaxBytes: number;
  };
  readonly fuse: { readonly dir: string; readonly allowOther: boolean; readonly debug: boolean };
  readonly http: { readonly addr: string; readonly snapshotTimeoutMs: number };
  /** Backups of the primary's LTX files; on only when `type` is set (ref §11). */
  readonly backup: {
    readonly type: '' | 'file' | 's3' | 'litefs-cloud';
    readonly path: string;
    readonly url: string;
    /** A fresh snapshot upload at least this often, bounding what a restore replays; 0 = never (our addition). */
    readonly snapshotIntervalMs: number;
  };
  /** The HTTP proxy in front of the application; on only when `target` is set (ref §12.6). */
  readonly proxy: {
    readonly addr: string;
    /** The application's `host:port`; '' = no proxy. */
    readonly target: string;
    /** The database whose TXID the `__txid` cookie tracks. */
    readonly db: string;
    readonly maxLagMs: number;
    readonly debug: boolean;
    readonly passthrough: readonly string[];
    readonly alwaysForward: readonly string[];
    readonly primaryRedirectTimeoutMs: number;
    readonly readTimeoutMs: number;
    readonly readHeaderTimeoutMs: number;
    readonly writeTimeoutMs: number;
    readonly idleTimeoutMs: number;
  };
  readonly lease: {
    readonly type: string;
    readonly hostname: string;
    readonly advertiseURL: string;
    readonly candidate: boolean;
    readonly promote: boolean;
    readonly reconnectDelayMs: number;
    readonly demoteDelayMs: number;
    readonly databases: readonly string[];
    readonly consul: { readonly url: string; readonly key: string; readonly ttlMs: number; readonly lockDelayMs: number };
    readonly etcd: {
      readonly endpoints: readonly string[];
      readonly key: string;
      readonly ttlMs: number;
      readonly username: string;
      readonly password: string;
    };
  };
  readonly log: { readonly format: 'text' | 'json'; readonly timestamp: boolean; readonly debug: boolean };
}

type LeafKind = 'bool' | 'string' | 'duration' | 'int' | 'strings' | 'exec';
/** 'yes': implemented; 'later': valid LiteFS (or planned) but not built yet. */
type Support = 'yes' | 'later';
interface Leaf {
  readonly kind: LeafKind;
  readonly support: Support;
  readonly oneOf?: readonly string[];
}
type Section = { readonly [key: string]: Leaf | Section };

const yes = (kind: LeafKind, oneOf?: readonly string[]): Leaf => ({ kind, support: 'yes', ...(oneOf ? { oneOf } : {}) });
const later = (kind: LeafKind): Leaf => ({ kind, support: 'later' });

/** Supported lease types in this build; the others are valid but not built yet. */
const LEASE_TYPES_BUILT = ['static', 'consul', 'etcd'];
const LEASE_TYPES_VALID = ['static', 'consul', 'etcd'];

const SCHEMA: Section = {
  'exit-on-error': yes('bool'),
  'skip-sync': yes('bool'),
  'strict-verify': yes('bool'),
  exec: yes('exec'),
  data: {
    dir: yes('string'),
    compress: yes('bool'),
    retention: yes('duration'),
    'retention-monitor-interval': yes('duration'),
    'retention-max-bytes': yes('int'),
  },
  fuse: { dir: yes('string'), 'allow-other': yes('bool'), debug: yes('bool') },
  http: { addr: yes('string'), 'snapshot-timeout': yes('duration') },
  proxy: {
    addr: yes('string'),
    target: yes('string'),
    db: yes('string'),
    'max-lag': yes('duration'),
    debug: yes('bool'),
    passthrough: yes('strings'),
    'always-forward': yes('strings'),
    'primary-redirect-timeout': yes('duration'),
    'read-timeout': yes('duration'),
    'read-header-timeout': yes('duration'),
    'write-timeout': yes('duration'),
    'idle-timeout': yes('duration'),
  },
  lease: {
    type: yes('string', LEASE_TYPES_VALID),
    hostname: yes('string'),
    'advertise-url': yes('string'),
    candidate: yes('bool'),
    promote: yes('bool'),
    'reconnect-delay': yes('duration'),
    'demote-delay': yes('duration'),
    databases: yes('strings'),
    consul: { url: yes('string'), key: yes('string'), ttl: yes('duration'), 'lock-delay': yes('duration') },
    etcd: {
      endpoints: yes('strings'),
      key: yes('string'),
      ttl: yes('duration'),
      username: yes('string'),
      password: yes('string'),
    },
  },
  backup: {
    type: yes('string', ['file', 's3', 'litefs-cloud']),
    path: yes('string'),
    'snapshot-interval': yes('duration'),
    url: yes('string'),
    cluster: later('string'),
    'auth-token': later('string'),
  },
  log: { format: yes('string', ['text', 'json']), timestamp: yes('bool'), debug: yes('bool') },
  tracing: {
    enabled: later('bool'),
    path: later('string'),
    'max-size': later('int'),
    'max-count': later('int'),
    compress: later('bool'),
  },
};

type Value = boolean | string | number | readonly string[] | readonly ExecEntry[];

/** Parses and validates config text (already env-expanded). */
export function parseConfig(text: string): Config {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) throw new ConfigError(`cannot parse config: ${doc.errors[0]!.message}`);
  const root: unknown = doc.toJS();
  const values = new Map<string, Value>();
  if (root !== null && root !== undefined) walk(root, SCHEMA, '', values);
  const config = build(values);
  validate(config);
  return config;
}

function walk(node: unknown, schema: Section, prefix: string, out: Map<string, Value>): void {
  if (!isPlainObject(node)) throw new ConfigError(`invalid value for ${prefix || 'config'}: expected a mapping`);
  for (const [key, value] of Object.entries(node)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const spec = schema[key];
    if (spec === undefined) throw new ConfigError(`unknown config key: ${path}`);
    if (isLeaf(spec)) {
      if (value === null) continue; // an empty YAML value keeps the default
      out.set(path, readLeaf(path, spec, value));
    } else if (value !== null) {
      walk(value, spec, path, out);
    }
  }
}

function readLeaf(path: string, spec: Leaf, value: unknown): Value {
  if (spec.support === 'later') throw new ConfigError(`not supported yet: ${path}`);
  const bad = (want: string): ConfigError =>
    new ConfigError(`invalid value for ${path}: ${JSON.stringify(value)} (expected ${want})`);
  switch (spec.kind) {
    case 'bool':
      if (typeof value !== 'boolean') throw bad('true or false');
      return value;
    case 'string': {
      if (typeof value !== 'string' && typeof value !== 'number') throw bad('a string');
      const s = String(value);
      if (spec.oneOf && s !== '' && !spec.oneOf.includes(s)) throw bad(`one of ${spec.oneOf.join(', ')}`);
      return s;
    }
    case 'int':
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw bad('a whole number >= 0');
      return value;
    case 'duration':
      // Go decodes a bare integer into a time.Duration as nanoseconds.
      if (typeof value === 'number') return value / 1e6;
      if (typeof value !== 'string') throw bad('a duration such as "10s"');
      try {
        return parseDuration(value);
      } catch {
        throw bad('a duration such as "10s"');
      }
    case 'strings':
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw bad('a list of strings');
      return value as string[];
    case 'exec':
      return readExec(path, value);
  }
}

function readExec(path: string, value: unknown): ExecEntry[] {
  if (typeof value === 'string') return value.trim() === '' ? [] : [{ cmd: value, ifCandidate: false }];
  if (!Array.isArray(value)) throw new ConfigError(`invalid value for ${path}: expected a command string or a list`);
  return value.map((entry, i) => {
    if (typeof entry === 'string') return { cmd: entry, ifCandidate: false };
    if (!isPlainObject(entry)) throw new ConfigError(`invalid value for ${path}[${i}]: expected {cmd, if-candidate}`);
    for (const k of Object.keys(entry)) {
      if (k !== 'cmd' && k !== 'if-candidate') throw new ConfigError(`unknown config key: ${path}[${i}].${k}`);
    }
    const cmd = entry['cmd'];
    const ifCandidate = entry['if-candidate'] ?? false;
    if (typeof cmd !== 'string' || cmd.trim() === '') throw new ConfigError(`invalid value for ${path}[${i}].cmd: expected a command`);
    if (typeof ifCandidate !== 'boolean') throw new ConfigError(`invalid value for ${path}[${i}].if-candidate: expected true or false`);
    return { cmd, ifCandidate };
  });
}

function build(v: Map<string, Value>): Config {
  const bool = (k: string, d: boolean): boolean => (v.get(k) as boolean | undefined) ?? d;
  const str = (k: string, d: string): string => (v.get(k) as string | undefined) ?? d;
  const num = (k: string, d: number): number => (v.get(k) as number | undefined) ?? d;
  return {
    exitOnError: bool('exit-on-error', true),
    skipSync: bool('skip-sync', false),
    strictVerify: bool('strict-verify', false),
    exec: (v.get('exec') as readonly ExecEntry[] | undefined) ?? [],
    data: {
      dir: str('data.dir', '/var/lib/litefs'),
      compress: bool('data.compress', true),
      retentionMs: num('data.retention', 10 * 60_000),
      retentionMonitorIntervalMs: num('data.retention-monitor-interval', 60_000),
      retentionMaxBytes: num('data.retention-max-bytes', 0),
    },
    fuse: { dir: str('fuse.dir', '/litefs'), allowOther: bool('fuse.allow-other', false), debug: bool('fuse.debug', false) },
    http: { addr: str('http.addr', ':20202'), snapshotTimeoutMs: num('http.snapshot-timeout', 0) },
    backup: {
      type: str('backup.type', '') as Config['backup']['type'],
      path: str('backup.path', ''),
      url: str('backup.url', ''),
      snapshotIntervalMs: num('backup.snapshot-interval', 24 * 3_600_000),
    },
    proxy: {
      addr: str('proxy.addr', ''),
      target: str('proxy.target', ''),
      db: str('proxy.db', ''),
      maxLagMs: num('proxy.max-lag', 10_000),
      debug: bool('proxy.debug', false),
      passthrough: (v.get('proxy.passthrough') as readonly string[] | undefined) ?? [],
      alwaysForward: (v.get('proxy.always-forward') as readonly string[] | undefined) ?? [],
      primaryRedirectTimeoutMs: num('proxy.primary-redirect-timeout', 5000),
      readTimeoutMs: num('proxy.read-timeout', 0),
      readHeaderTimeoutMs: num('proxy.read-header-timeout', 10_000),
      writeTimeoutMs: num('proxy.write-timeout', 0),
      idleTimeoutMs: num('proxy.idle-timeout', 30_000),
    },
    lease: {
      type: str('lease.type', ''),
      hostname: str('lease.hostname', ''),
      advertiseURL: str('lease.advertise-url', ''),
      candidate: bool('lease.candidate', true),
      promote: bool('lease.promote', false),
      reconnectDelayMs: num('lease.reconnect-delay', 1000),
      demoteDelayMs: num('lease.demote-delay', 10_000),
      databases: (v.get('lease.databases') as readonly string[] | undefined) ?? [],
      consul: {
        url: str('lease.consul.url', ''),
        key: str('lease.consul.key', ''),
        ttlMs: num('lease.consul.ttl', 10_000),
        lockDelayMs: num('lease.consul.lock-delay', 1000),
      },
      etcd: {
        endpoints: (v.get('lease.etcd.endpoints') as readonly string[] | undefined) ?? [],
        key: str('lease.etcd.key', 'litefs/primary'),
        ttlMs: num('lease.etcd.ttl', 10_000),
        username: str('lease.etcd.username', ''),
        password: str('lease.etcd.password', ''),
      },
    },
    log: {
      format: str('log.format', 'text') === 'json' ? 'json' : 'text',
      timestamp: bool('log.timestamp', false),
      debug: bool('log.debug', false),
    },
  };
}

/** LiteFS's MountCommand.Validate rules, plus the lease types this build has. */
function validate(c: Config): void {
  if (c.fuse.dir === '') throw new ConfigError('fuse directory required (fuse.dir)');
  if (c.data.dir === '') throw new ConfigError('data directory required (data.dir)');
  if (c.fuse.dir === c.data.dir) throw new ConfigError('fuse directory and data directory cannot be the same path');
  if (c.lease.type === '') throw new ConfigError('lease type required (lease.type)');
  if (!LEASE_TYPES_BUILT.includes(c.lease.type)) throw new ConfigError(`not supported yet: lease.type ${c.lease.type}`);
  if (c.lease.candidate && c.lease.databases.length > 0) {
    throw new ConfigError('cannot specify lease.databases on a candidate node');
  }
  if (c.lease.type === 'consul' && c.lease.consul.url === '') throw new ConfigError('lease.consul.url required for lease.type consul');
  if (c.lease.type === 'consul' && c.lease.consul.key === '') throw new ConfigError('lease.consul.key required for lease.type consul');
  if (c.lease.type === 'etcd' && c.lease.etcd.endpoints.length === 0) throw new ConfigError('lease.etcd.endpoints required for lease.type etcd');
  if (c.lease.type === 'etcd' && c.lease.etcd.ttlMs < 2000) throw new ConfigError(`lease.etcd.ttl must be at least 2s (etcd's minimum lease TTL), got ${c.lease.etcd.ttlMs}ms`);
  if (c.backup.type === 'litefs-cloud') throw new ConfigError('not supported yet: backup.type litefs-cloud (LiteFS Cloud is gone; use backup.type file)');
  if (c.backup.type === 'file' && c.backup.path === '') throw new ConfigError('backup path required (backup.path) for backup.type file');
  if (c.backup.type === 's3') {
    if (c.backup.url === '') throw new ConfigError('backup url required (backup.url: s3://BUCKET[/PREFIX]) for backup.type s3');
    try {
      parseS3URL(c.backup.url);
    } catch (err) {
      throw new ConfigError(err instanceof Error ? err.message : String(err));
    }
  }
  if (c.backup.type !== 's3' && c.backup.url !== '') throw new ConfigError(`backup.url is only for backup.type s3 (here: ${c.backup.type === '' ? 'no backup.type' : c.backup.type})`);
  // LiteFS's ProxyServer.Listen checks, at start-up instead of after the mount.
  if (c.proxy.target !== '') {
    if (c.proxy.addr === '') throw new ConfigError('proxy addr required (proxy.addr)');
    if (c.proxy.db === '') throw new ConfigError('proxy database required (proxy.db)');
    for (const key of ['addr', 'target'] as const) {
      try {
        parseListenAddr(c.proxy[key], `proxy.${key}`);
      } catch (err) {
        throw new ConfigError(err instanceof Error ? err.message : String(err));
      }
    }
  }
  // A static replica finds its primary only through this URL (ref §10.2).
  if (c.lease.type === 'static' && !c.lease.candidate && c.lease.advertiseURL === '') {
    throw new ConfigError('lease.advertise-url required on a static replica (lease.candidate false): the primary\'s API URL');
  }
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isLeaf(x: Leaf | Section): x is Leaf {
  return typeof (x as Leaf).kind === 'string' && typeof (x as Leaf).support === 'string';
}
