import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../../src/cli/config.js';
import { loadConfigFile } from '../../../src/cli/config-file.js';
import { expandEnv } from '../../../src/cli/env-expand.js';
import { parseDuration } from '../../../src/cli/duration.js';

const MINIMAL = 'fuse: {dir: /mnt/litefs}\ndata: {dir: /var/lib/litefs-test}\nlease: {type: static}\n';

describe('litefs.yml', () => {
  test('defaults match LiteFS v0.5.11', () => {
    const c = parseConfig(MINIMAL);
    assert.equal(c.exitOnError, true);
    assert.equal(c.data.compress, true);
    assert.equal(c.data.retentionMs, 600_000);
    assert.equal(c.data.retentionMonitorIntervalMs, 60_000);
    assert.equal(c.data.retentionMaxBytes, 0);
    assert.equal(c.http.addr, ':20202');
    assert.equal(c.lease.candidate, true);
    assert.equal(c.log.format, 'text');
  });

  test('reads every implemented key', () => {
    const c = parseConfig(`
exit-on-error: false
skip-sync: true
strict-verify: true
exec:
  - cmd: "migrate up"
    if-candidate: true
  - cmd: "app serve"
data: {dir: /d, compress: false, retention: 1m30s, retention-monitor-interval: 5s, retention-max-bytes: 1048576}
fuse: {dir: /f, allow-other: true, debug: true}
http: {addr: "127.0.0.1:20202"}
lease: {type: static, hostname: h1, advertise-url: "http://h1:20202", candidate: false}
log: {format: json, timestamp: true, debug: true}
`);
    assert.equal(c.exitOnError, false);
    assert.deepEqual(c.exec, [
      { cmd: 'migrate up', ifCandidate: true },
      { cmd: 'app serve', ifCandidate: false },
    ]);
    assert.equal(c.data.retentionMs, 90_000);
    assert.equal(c.data.retentionMaxBytes, 1048576);
    assert.equal(c.fuse.allowOther, true);
    assert.equal(c.lease.candidate, false);
    assert.equal(c.lease.advertiseURL, 'http://h1:20202');
    assert.equal(c.log.format, 'json');
  });

  test('proxy: LiteFS defaults, every key read, on only with a target', () => {
    const off = parseConfig(MINIMAL).proxy;
    assert.equal(off.target, '');
    assert.deepEqual(
      [off.maxLagMs, off.primaryRedirectTimeoutMs, off.readTimeoutMs, off.readHeaderTimeoutMs, off.writeTimeoutMs, off.idleTimeoutMs],
      [10_000, 5000, 0, 10_000, 0, 30_000],
    );
    const on = parseConfig(
      MINIMAL +
        'proxy:\n  addr: ":8080"\n  target: "localhost:8081"\n  db: "my.db"\n  max-lag: 2s\n  debug: true\n' +
        '  passthrough: ["*.png", "/build/*"]\n  always-forward: ["/login"]\n  primary-redirect-timeout: 1s\n' +
        '  read-timeout: 3s\n  read-header-timeout: 4s\n  write-timeout: 5s\n  idle-timeout: 6s\n',
    ).proxy;
    assert.deepEqual(on, {
      addr: ':8080',
      target: 'localhost:8081',
      db: 'my.db',
      maxLagMs: 2000,
      debug: true,
      passthrough: ['*.png', '/build/*'],
      alwaysForward: ['/login'],
      primaryRedirectTimeoutMs: 1000,
      readTimeoutMs: 3000,
      readHeaderTimeoutMs: 4000,
      writeTimeoutMs: 5000,
      idleTimeoutMs: 6000,
    });
  });

  test('proxy: a target needs an address and a database, each host:port checked', () => {
    assert.throws(() => parseConfig(MINIMAL + 'proxy: {target: "localhost:8081", db: x.db}\n'), /proxy addr required \(proxy\.addr\)/);
    assert.throws(() => parseConfig(MINIMAL + 'proxy: {addr: ":8080", target: "localhost:8081"}\n'), /proxy database required \(proxy\.db\)/);
    assert.throws(() => parseConfig(MINIMAL + 'proxy: {addr: "8080", target: "localhost:8081", db: x.db}\n'), /invalid proxy\.addr: "8080"/);
    assert.throws(() => parseConfig(MINIMAL + 'proxy: {addr: ":8080", target: "localhost", db: x.db}\n'), /invalid proxy\.target: "localhost"/);
    assert.throws(() => parseConfig(MINIMAL + 'proxy: {addr: ":8080", target: ":8081", db: x.db, max-lag: soon}\n'), /invalid value for proxy\.max-lag/);
  });

  test('backup: off by default; type file needs a path, type s3 an s3:// URL', () => {
    const day = 24 * 3_600_000;
    assert.deepEqual(parseConfig(MINIMAL).backup, { type: '', path: '', url: '', snapshotIntervalMs: day });
    assert.deepEqual(parseConfig(MINIMAL + 'backup: {type: file, path: /var/backups/litefs, snapshot-interval: 6h}\n').backup, {
      type: 'file',
      path: '/var/backups/litefs',
      url: '',
      snapshotIntervalMs: 6 * 3_600_000,
    });
    assert.throws(() => parseConfig(MINIMAL + 'backup: {type: file}\n'), /backup path required \(backup\.path\)/);
    assert.equal(parseConfig(MINIMAL + 'backup: {type: s3, url: "s3://bkt/litefs?region=auto"}\n').backup.url, 's3://bkt/litefs?region=auto');
    assert.throws(() => parseConfig(MINIMAL + 'backup: {type: s3}\n'), /backup url required/);
    assert.throws(() => parseConfig(MINIMAL + 'backup: {type: s3, url: "https://bkt"}\n'), /want s3:\/\/BUCKET/);
    assert.throws(() => parseConfig(MINIMAL + 'backup: {type: file, path: /b, url: "s3://bkt"}\n'), /backup\.url is only for backup\.type s3/);
    assert.throws(() => parseConfig(MINIMAL + 'backup: {type: gcs}\n'), /invalid value for backup\.type/);
  });

  test('exec may be a single command string', () => {
    assert.deepEqual(parseConfig(MINIMAL + 'exec: "app -port 8080"\n').exec, [{ cmd: 'app -port 8080', ifCandidate: false }]);
  });

  test('unknown keys are rejected with the key named', () => {
    assert.throws(() => parseConfig(MINIMAL + 'bogus: 1\n'), /unknown config key: bogus/);
    assert.throws(() => parseConfig(MINIMAL.replace('dir: /mnt/litefs', 'dir: /mnt/litefs, mode: 1')), /unknown config key: fuse\.mode/);
  });

  test('valid LiteFS keys that are not built yet stop start-up', () => {
    assert.throws(() => parseConfig(MINIMAL + 'backup: {type: litefs-cloud}\n'), /not supported yet: backup\.type litefs-cloud/);
    assert.throws(() => parseConfig(MINIMAL + 'backup: {type: file, path: /b, cluster: c}\n'), /not supported yet: backup\.cluster/);
    assert.throws(() => parseConfig(MINIMAL.replace('type: static', 'type: consul')), /lease\.consul\.url required/);
    assert.throws(() => parseConfig(MINIMAL.replace('type: static', 'type: etcd')), /lease\.etcd\.endpoints required/);
    assert.throws(
      () => parseConfig(MINIMAL.replace('lease: {type: static}', 'lease: {type: etcd, etcd: {endpoints: ["http://127.0.0.1:1"], ttl: 1s}}')),
      /at least 2s/,
    );
    assert.throws(() => parseConfig(MINIMAL + 'tracing: {path: /tmp/t}\n'), /not supported yet: tracing\.path/);
  });

  test('http.snapshot-timeout is a duration, 0 by default', () => {
    assert.equal(parseConfig(MINIMAL).http.snapshotTimeoutMs, 0);
    assert.equal(parseConfig(MINIMAL + 'http: {snapshot-timeout: 90s}\n').http.snapshotTimeoutMs, 90_000);
    assert.throws(() => parseConfig(MINIMAL + 'http: {snapshot-timeout: soon}\n'), /http\.snapshot-timeout/);
  });

  test('invalid values are rejected with the key named', () => {
    assert.throws(() => parseConfig(MINIMAL + 'exit-on-error: maybe\n'), /invalid value for exit-on-error/);
    assert.throws(() => parseConfig(MINIMAL.replace('dir: /var/lib/litefs-test', 'dir: /d, retention: soon')), /invalid value for data\.retention/);
    assert.throws(() => parseConfig(MINIMAL.replace('type: static', 'type: zookeeper')), /invalid value for lease\.type/);
    assert.throws(() => parseConfig(MINIMAL + 'log: {format: xml}\n'), /invalid value for log\.format/);
    assert.throws(() => parseConfig(MINIMAL + 'data: {dir: /x}\ndata: {dir: /y}\n'), /cannot parse config/);
  });

  test('mount validation rules', () => {
    assert.throws(() => parseConfig('fuse: {dir: /a}\ndata: {dir: /a}\nlease: {type: static}\n'), /cannot be the same path/);
    assert.throws(() => parseConfig('fuse: {dir: /a}\ndata: {dir: /b}\n'), /lease type required/);
  });
});

describe('env expansion', () => {
  const env = { HOST: 'node-1', REGION: 'ams', PRIMARY_REGION: 'ams', EMPTY: '' };
  test('expands $VAR and ${VAR}, unset to empty', () => {
    assert.equal(expandEnv('a $HOST b ${ REGION } c $NOPE d', env), 'a node-1 b ams c  d');
  });
  test('evaluates comparisons inside ${ }', () => {
    assert.equal(expandEnv("${REGION == 'ams'}", env), 'true');
    assert.equal(expandEnv('${REGION != "ams"}', env), 'false');
    assert.equal(expandEnv('${REGION == PRIMARY_REGION}', env), 'true');
    assert.equal(expandEnv('${HOST != PRIMARY_REGION}', env), 'true');
  });
  test('loadConfigFile expands unless -no-expand-env', () => {
    const dir = mkdtempSync(join(tmpdir(), 'litefs-config-'));
    try {
      const path = join(dir, 'litefs.yml');
      writeFileSync(path, 'fuse: {dir: /f}\ndata: {dir: "/data/${NODE}"}\nlease:\n  type: static\n  hostname: "${NODE == \'n1\'}"\n');
      const expanded = loadConfigFile({ path, env: { NODE: 'n1' } });
      assert.equal(expanded.config.data.dir, '/data/n1');
      assert.equal(expanded.config.lease.hostname, 'true');
      const raw = loadConfigFile({ path, env: { NODE: 'n1' }, noExpandEnv: true });
      assert.equal(raw.config.data.dir, '/data/${NODE}');
      // search order: ./litefs.yml first
      assert.equal(loadConfigFile({ cwd: dir, home: '/nonexistent', env: { NODE: 'n2' } }).path, path);
      assert.throws(() => loadConfigFile({ cwd: '/nonexistent', home: '/nonexistent' }), /config file not found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('durations', () => {
  test('Go duration strings', () => {
    assert.equal(parseDuration('10s'), 10_000);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration('0'), 0);
    assert.throws(() => parseDuration('10'), /invalid duration/);
    assert.throws(() => parseDuration('s'), /invalid duration/);
  });
});
