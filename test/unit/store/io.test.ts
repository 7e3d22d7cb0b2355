import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { atomicTempPath, isErrno, RealIO } from '../../../src/store/io.js';
import { CrashIO, SimulatedCrash, type KillPoint } from '../../../src/store/io-crash.js';
import { repoRoot } from '../../helpers/paths.js';
import { xorshift32 } from '../../helpers/rng.js';

const scratch = fs.mkdtempSync(join(tmpdir(), 'litefs-store-io-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));
let caseNo = 0;

/** A fresh data folder and a shadow folder beside it. */
function freshDirs(): { data: string; shadow: string } {
  const root = join(scratch, String(++caseNo));
  fs.mkdirSync(join(root, 'data'), { recursive: true });
  return { data: join(root, 'data'), shadow: join(root, 'shadow') };
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (path: string): string => fs.readFileSync(path, 'utf8');

describe('RealIO', () => {
  const io = new RealIO();

  test('open modes, positional read and write, truncate, sizes', () => {
    const { data } = freshDirs();
    const p = join(data, 'f');
    assert.throws(() => io.open(p, 'readWrite'), (e: unknown) => isErrno(e, 'ENOENT'));
    const fd = io.open(p, 'createNew');
    assert.throws(() => io.open(p, 'createNew'), (e: unknown) => isErrno(e, 'EEXIST'));
    io.write(fd, bytes('hello world'), 0);
    io.write(fd, bytes('XXhiXX'), 4, 2, 2);
    assert.equal(io.fileSize(fd), 11);
    const buf = new Uint8Array(20);
    assert.equal(io.read(fd, buf, 0), 11, 'a read stops at the end of the file');
    assert.equal(new TextDecoder().decode(buf.subarray(0, 11)), 'hellhiworld');
    assert.equal(io.read(fd, buf, 6, 10, 3), 3);
    assert.equal(new TextDecoder().decode(buf.subarray(10, 13)), 'wor');
    io.truncate(fd, 4);
    io.fsync(fd);
    io.fdatasync(fd);
    io.close(fd);
    assert.equal(io.sizeOf(p), 4);
    assert.equal(io.sizeOf(join(data, 'nope')), null);
    const fd2 = io.open(p, 'create');
    assert.equal(io.fileSize(fd2), 4, "'create' keeps contents");
    io.close(fd2);
    io.close(io.open(p, 'replace'));
    assert.equal(io.sizeOf(p), 0, "'replace' truncates");
    assert.throws(() => io.write(io.open(p, 'read'), bytes('x'), 0), (e: unknown) => isErrno(e, 'EBADF'));
  });

  test('names: mkdirp, readdir sorted, rename, unlink, exists, fsyncDir', () => {
    const { data } = freshDirs();
    io.mkdirp(join(data, 'a', 'b'));
    io.mkdirp(join(data, 'a', 'b'));
    for (const n of ['z', 'm', 'a1']) io.close(io.open(join(data, 'a', n), 'create'));
    assert.deepEqual(io.readdir(join(data, 'a')), ['a1', 'b', 'm', 'z']);
    io.rename(join(data, 'a', 'z'), join(data, 'a', 'b', 'z'));
    assert.ok(io.exists(join(data, 'a', 'b', 'z')));
    io.unlink(join(data, 'a', 'm'));
    assert.ok(!io.exists(join(data, 'a', 'm')));
    io.fsyncDir(join(data, 'a'));
    assert.throws(() => io.fsyncDir(join(data, 'nope')), (e: unknown) => isErrno(e, 'ENOENT'));
  });

  test('writeFileAtomic replaces contents and leaves no temporary file; copyFile copies', () => {
    const { data } = freshDirs();
    const p = join(data, 'clusterid');
    io.writeFileAtomic(p, bytes('one'));
    io.writeFileAtomic(p, bytes('two'));
    assert.equal(text(p), 'two');
    assert.ok(!fs.existsSync(atomicTempPath(p)));
    io.copyFile(p, join(data, 'copy'));
    assert.equal(text(join(data, 'copy')), 'two');
  });
});

describe('CrashIO kill points', () => {
  test('counts syncs, crashes before the N-th, refuses calls until restart', () => {
    const { data, shadow } = freshDirs();
    const io = new CrashIO({ shadowDir: shadow, killAt: 3, trace: true });
    const p = join(data, 'f');
    const fd = io.open(p, 'create');
    io.write(fd, bytes('a'), 0);
    io.fsync(fd);
    io.write(fd, bytes('b'), 1);
    io.fdatasync(fd);
    io.write(fd, bytes('c'), 2);
    let crash: unknown;
    try {
      io.fsyncDir(data);
    } catch (err) {
      crash = err;
    }
    assert.ok(crash instanceof SimulatedCrash);
    assert.deepEqual(crash.point, { count: 3, op: 'fsyncDir', path: data });
    assert.deepEqual(io.trace, ['1 fsync ' + p, '2 fdatasync ' + p, '3 fsyncDir ' + data]);
    assert.throws(() => io.read(fd, new Uint8Array(1), 0), SimulatedCrash);
    assert.equal(io.openFiles, 1);
    io.restart();
    assert.equal(io.openFiles, 0);
    assert.equal(text(p), 'abc', 'process death keeps the page cache');
    // The crash left 'c' unsynced and the new name undurable: power loss takes both.
    io.simulatePowerLoss();
    assert.ok(!fs.existsSync(p), 'the folder was never fsynced, so the file never existed');
  });

  test("'mutation' counting stops creates, writes and renames too; the stopped operation does not happen", () => {
    const { data, shadow } = freshDirs();
    const io = new CrashIO({ shadowDir: shadow, count: 'mutation' });
    const points: KillPoint[] = [];
    for (let n = 1; n <= 5; n++) {
      io.setKillAt(n);
      assert.throws(() => io.writeFileAtomic(join(data, `f${n}`), bytes(`v${n}`)), (err: unknown) => {
        if (!(err instanceof SimulatedCrash)) return false;
        points.push(err.point);
        return true;
      });
      io.restart();
    }
    assert.deepEqual(
      points.map((pt) => pt.op),
      ['create', 'write', 'fsync', 'rename', 'fsyncDir'],
      'the sequence of writeFileAtomic',
    );
    assert.deepEqual(fs.readdirSync(data), ['f2.tmp', 'f3.tmp', 'f4.tmp', 'f5']);
    assert.equal(text(join(data, 'f4.tmp')), 'v4');
    assert.equal(text(join(data, 'f3.tmp')), 'v3', 'crashed before the fsync');
    assert.equal(text(join(data, 'f2.tmp')), '', 'crashed before the write');
    io.writeFileAtomic(join(data, 'f6'), bytes('v6'));
    io.simulatePowerLoss();
    assert.deepEqual(fs.readdirSync(data), ['f2.tmp', 'f3.tmp', 'f4.tmp', 'f5', 'f6'], "f6's folder fsync made every name durable");
    const contents = ['f2.tmp', 'f3.tmp', 'f4.tmp', 'f5', 'f6'].map((n) => text(join(data, n)));
    assert.deepEqual(contents, ['', '', 'v4', 'v5', 'v6'], 'but only fsynced contents: f3.tmp was never fsynced');
  });

  test('a custom action sees the kill point; counters keep counting', () => {
    const { data, shadow } = freshDirs();
    const seen: KillPoint[] = [];
    const io = new CrashIO({ shadowDir: shadow, killAt: 2, action: (pt) => seen.push(pt) });
    const fd = io.open(join(data, 'f'), 'create');
    io.fsync(fd);
    assert.throws(() => io.fsync(fd), SimulatedCrash);
    assert.equal(seen.length, 1);
    assert.equal(io.syncs, 2);
    assert.equal(io.mutations, 3);
  });

  test("'kill' ends the whole process with SIGKILL; what was written stays", () => {
    const { data, shadow } = freshDirs();
    const module = join(repoRoot, 'dist', 'src', 'store', 'io-crash.js');
    const script = `
      import { CrashIO } from ${JSON.stringify(module)};
      const io = new CrashIO({ shadowDir: ${JSON.stringify(shadow)}, killAt: 2, action: 'kill' });
      const fd = io.open(${JSON.stringify(join(data, 'f'))}, 'create');
      io.write(fd, new TextEncoder().encode('before'), 0);
      io.fsync(fd);
      io.write(fd, new TextEncoder().encode('BEFORE'), 0);
      io.fsync(fd);
      io.write(fd, new TextEncoder().encode('after!'), 0);
      process.exit(0);
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    assert.equal(text(join(data, 'f')), 'BEFORE');
  });
});

describe('CrashIO power loss', () => {
  test('unsynced writes and truncates are lost, synced ones stay', () => {
    const { data, shadow } = freshDirs();
    const p = join(data, 'db');
    fs.writeFileSync(p, 'durable-contents');
    const io = new CrashIO({ shadowDir: shadow });
    const fd = io.open(p, 'readWrite');
    io.write(fd, bytes('DURABLE'), 0);
    io.fsync(fd);
    io.write(fd, bytes('lost'), 0);
    io.write(fd, bytes(' and more that grows the file'), 16);
    io.truncate(fd, 3);
    io.write(fd, bytes('zz'), 10);
    io.simulatePowerLoss();
    assert.equal(text(p), 'DURABLE-contents');
  });

  test('rename without a folder fsync is undone, replaced file comes back; with it, it stays', () => {
    const { data, shadow } = freshDirs();
    fs.writeFileSync(join(data, 'target'), 'old');
    const io = new CrashIO({ shadowDir: shadow });
    const write = (name: string, s: string): void => {
      const fd = io.open(join(data, name), 'replace');
      io.write(fd, bytes(s), 0);
      io.fsync(fd);
      io.close(fd);
    };
    write('tmp', 'new');
    io.rename(join(data, 'tmp'), join(data, 'target'));
    io.simulatePowerLoss();
    assert.equal(text(join(data, 'target')), 'old');
    assert.ok(!fs.existsSync(join(data, 'tmp')), 'tmp was never durable in the folder');
    io.writeFileAtomic(join(data, 'target'), bytes('new'));
    io.simulatePowerLoss();
    assert.equal(text(join(data, 'target')), 'new');
    assert.deepEqual(fs.readdirSync(data), ['target']);
    assert.deepEqual(fs.readdirSync(shadow), [], 'no shadow links are left behind');
  });

  test('unlink without a folder fsync is undone, with the durable contents', () => {
    const { data, shadow } = freshDirs();
    const p = join(data, 'journal');
    fs.writeFileSync(p, 'hot journal');
    const io = new CrashIO({ shadowDir: shadow });
    const fd = io.open(p, 'readWrite');
    io.write(fd, bytes('HOT'), 0);
    io.close(fd);
    io.unlink(p);
    io.simulatePowerLoss();
    assert.equal(text(p), 'hot journal');
    io.unlink(p);
    io.fsyncDir(data);
    io.simulatePowerLoss();
    assert.ok(!fs.existsSync(p));
  });

  test('a new folder vanishes with its contents unless its parent was fsynced', () => {
    const { data, shadow } = freshDirs();
    const io = new CrashIO({ shadowDir: shadow });
    const dir = join(data, 'dbs', 'db', 'ltx');
    io.mkdirp(dir);
    const fd = io.open(join(dir, '0000000000000001-0000000000000001.ltx'), 'createNew');
    io.write(fd, bytes('ltx'), 0);
    io.fsync(fd);
    io.close(fd);
    io.fsyncDir(dir);
    io.fsyncDir(join(data, 'dbs', 'db'));
    io.fsyncDir(join(data, 'dbs'));
    io.simulatePowerLoss();
    assert.deepEqual(fs.readdirSync(data), [], 'dbs/ itself was never made durable in data/');
    io.mkdirp(dir);
    for (const d of [dir, join(data, 'dbs', 'db'), join(data, 'dbs'), data]) io.fsyncDir(d);
    io.simulatePowerLoss();
    assert.ok(fs.existsSync(dir));
  });

  test('copyFile makes a durable copy', () => {
    const { data, shadow } = freshDirs();
    fs.writeFileSync(join(data, 'db'), 'x'.repeat(3_000_000));
    const io = new CrashIO({ shadowDir: shadow });
    io.mkdirp(join(data, 'forensic'));
    io.fsyncDir(data);
    io.copyFile(join(data, 'db'), join(data, 'forensic', 'db'));
    io.simulatePowerLoss();
    assert.equal(fs.statSync(join(data, 'forensic', 'db')).size, 3_000_000);
  });

  test('renaming a folder is refused as unmodelled', () => {
    const { data, shadow } = freshDirs();
    const io = new CrashIO({ shadowDir: shadow });
    io.mkdirp(join(data, 'a'));
    assert.throws(() => io.rename(join(data, 'a'), join(data, 'b')), /does not model renaming folders/);
  });
});

describe('CrashIO power loss against a reference model', () => {
  const rng = xorshift32;

  interface ModelFile {
    cur: Uint8Array;
    dur: Uint8Array;
  }
  interface ModelDir {
    cur: Map<string, number>;
    dur: Map<string, number>;
  }

  /** The strict durability model, plainly: whole-content snapshots and whole-folder maps. */
  class Model {
    readonly files = new Map<number, ModelFile>();
    readonly dirs = new Map<string, ModelDir>();
    readonly fds = new Map<number, number>();
    private nextId = 1;

    addDir(dir: string): void {
      this.dirs.set(dir, { cur: new Map(), dur: new Map() });
    }
    /** A file that exists (durably) before the test starts. */
    preexisting(dir: string, name: string, content: Uint8Array): void {
      const id = this.nextId++;
      this.files.set(id, { cur: content.slice(), dur: content.slice() });
      this.dirs.get(dir)!.cur.set(name, id);
      this.dirs.get(dir)!.dur.set(name, id);
    }
    idAt(dir: string, name: string): number | undefined {
      return this.dirs.get(dir)!.cur.get(name);
    }
    open(fd: number, dir: string, name: string, mode: 'create' | 'replace' | 'readWrite'): void {
      let id = this.idAt(dir, name);
      if (id === undefined) {
        id = this.nextId++;
        this.files.set(id, { cur: new Uint8Array(0), dur: new Uint8Array(0) });
        this.dirs.get(dir)!.cur.set(name, id);
      } else if (mode === 'replace') {
        this.files.get(id)!.cur = new Uint8Array(0);
      }
      this.fds.set(fd, id);
    }
    write(fd: number, pos: number, data: Uint8Array): void {
      const f = this.files.get(this.fds.get(fd)!)!;
      const out = new Uint8Array(Math.max(f.cur.length, pos + data.length));
      out.set(f.cur);
      out.set(data, pos);
      f.cur = out;
    }
    truncate(fd: number, size: number): void {
      const f = this.files.get(this.fds.get(fd)!)!;
      const out = new Uint8Array(size);
      out.set(f.cur.subarray(0, Math.min(size, f.cur.length)));
      f.cur = out;
    }
    fsync(fd: number): void {
      const f = this.files.get(this.fds.get(fd)!)!;
      f.dur = f.cur.slice();
    }
    rename(d1: string, n1: string, d2: string, n2: string): void {
      const id = this.dirs.get(d1)!.cur.get(n1)!;
      // POSIX: renaming onto another name of the same file does nothing (power loss can leave hard links).
      if (this.dirs.get(d2)!.cur.get(n2) === id) return;
      this.dirs.get(d1)!.cur.delete(n1);
      this.dirs.get(d2)!.cur.set(n2, id);
    }
    unlink(dir: string, name: string): void {
      this.dirs.get(dir)!.cur.delete(name);
    }
    fsyncDir(dir: string): void {
      const d = this.dirs.get(dir)!;
      d.dur = new Map(d.cur);
    }
    powerLoss(): void {
      this.fds.clear();
      for (const d of this.dirs.values()) d.cur = new Map(d.dur);
      for (const f of this.files.values()) f.cur = f.dur.slice();
    }
  }

  function assertDisk(model: Model, which: 'cur' | 'dur', where: string, log: string[] = []): void {
    try {
      checkDisk(model, which, where);
    } catch (err) {
      console.log(`operations since the last power loss:\n${log.join('\n')}`);
      throw err;
    }
  }

  function checkDisk(model: Model, which: 'cur' | 'dur', where: string): void {
    for (const [dir, d] of model.dirs) {
      const names = [...d[which].keys()].sort();
      assert.deepEqual(fs.readdirSync(dir).sort(), names, `${where}: names in ${dir}`);
      for (const name of names) {
        const want = Buffer.from(model.files.get(d[which].get(name)!)![which]);
        const got = fs.readFileSync(join(dir, name));
        assert.ok(got.equals(want), `${where}: contents of ${join(dir, name)}: got ${got.length} bytes, want ${want.length}`);
      }
    }
  }

  test('40 seeds x 300 operations, with kill points and several power losses per seed', () => {
    const NAMES = ['db', 'wal', 'journal', 'x.tmp'];
    let losses = 0;
    let crashes = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const next = rng(seed * 15485863);
      const { data, shadow } = freshDirs();
      const dirs = [join(data, 'a'), join(data, 'b')];
      const model = new Model();
      for (const d of dirs) {
        fs.mkdirSync(d);
        model.addDir(d);
      }
      for (let i = 0; i < 2; i++) {
        const content = Uint8Array.from({ length: next() % 5000 }, () => next() & 0xff);
        fs.writeFileSync(join(dirs[i]!, NAMES[i]!), content);
        model.preexisting(dirs[i]!, NAMES[i]!, content);
      }
      const io = new CrashIO({ shadowDir: shadow, count: 'mutation' });
      io.setKillAt(1 + (next() % 40));
      const openFds: number[] = [];
      const log: string[] = [];
      const pick = <T>(xs: readonly T[]): T => xs[next() % xs.length]!;
      for (let step = 0; step < 300; step++) {
        const where = `seed ${seed} step ${step}`;
        const dir = pick(dirs);
        const name = pick(NAMES);
        const op = next() % 20;
        const short = (d: string, n: string): string => `${d.slice(-1)}/${n}`;
        const note = (what: string): number => log.push(`${step}: ${what}`);
        try {
          if (op < 3) {
            const mode = pick(['create', 'replace', 'readWrite'] as const);
            if (mode === 'readWrite' && model.idAt(dir, name) === undefined) continue;
            const fd = io.open(join(dir, name), mode);
            note(`open ${short(dir, name)} ${mode} -> fd ${fd} (file ${model.idAt(dir, name) ?? 'new'})`);
            model.open(fd, dir, name, mode);
            openFds.push(fd);
          } else if (op < 8 && openFds.length > 0) {
            const fd = pick(openFds);
            const size = model.files.get(model.fds.get(fd)!)!.cur.length;
            const pos = next() % (size + 200);
            const chunk = Uint8Array.from({ length: 1 + (next() % 300) }, () => next() & 0xff);
            note(`write fd ${fd} (file ${model.fds.get(fd)}) at ${pos} len ${chunk.length}`);
            io.write(fd, chunk, pos);
            model.write(fd, pos, chunk);
          } else if (op < 9 && openFds.length > 0) {
            const fd = pick(openFds);
            const size = model.files.get(model.fds.get(fd)!)!.cur.length;
            const to = next() % (size + 100);
            note(`truncate fd ${fd} (file ${model.fds.get(fd)}) to ${to}`);
            io.truncate(fd, to);
            model.truncate(fd, to);
          } else if (op < 11 && openFds.length > 0) {
            const fd = pick(openFds);
            note(`fsync fd ${fd} (file ${model.fds.get(fd)})`);
            if (next() % 2 === 0) io.fsync(fd);
            else io.fdatasync(fd);
            model.fsync(fd);
          } else if (op < 12 && openFds.length > 0) {
            const i = next() % openFds.length;
            note(`close fd ${openFds[i]}`);
            io.close(openFds[i]!);
            model.fds.delete(openFds[i]!);
            openFds.splice(i, 1);
          } else if (op < 14) {
            if (model.idAt(dir, name) === undefined) continue;
            const dir2 = pick(dirs);
            const name2 = pick(NAMES);
            note(`rename ${short(dir, name)} (file ${model.idAt(dir, name)}) -> ${short(dir2, name2)} (file ${model.idAt(dir2, name2)})`);
            io.rename(join(dir, name), join(dir2, name2));
            if (dir !== dir2 || name !== name2) model.rename(dir, name, dir2, name2);
          } else if (op < 15) {
            if (model.idAt(dir, name) === undefined) continue;
            note(`unlink ${short(dir, name)} (file ${model.idAt(dir, name)})`);
            io.unlink(join(dir, name));
            model.unlink(dir, name);
          } else if (op < 18) {
            note(`fsyncDir ${dir.slice(-1)}`);
            io.fsyncDir(dir);
            model.fsyncDir(dir);
          } else if (op < 19) {
            assertDisk(model, 'cur', where, log);
            io.simulatePowerLoss();
            model.powerLoss();
            openFds.length = 0;
            assertDisk(model, 'cur', `${where} after power loss`, log);
            log.length = 0;
            losses++;
            io.setKillAt(1 + (next() % 40));
          } else {
            // writeFileAtomic: replay in the model the steps that ran before any crash
            // (open tmp, write, fsync, rename, fsync folder: five counted operations).
            const content = Uint8Array.from({ length: next() % 400 }, () => next() & 0xff);
            const tmpName = `${name}.tmp`;
            const before = io.counted;
            note(`writeFileAtomic ${short(dir, name)} (tmp file ${model.idAt(dir, tmpName)}, target file ${model.idAt(dir, name)})`);
            try {
              io.writeFileAtomic(join(dir, name), content);
            } finally {
              const done = io.counted - before - (io.crashed !== null ? 1 : 0);
              if (done >= 1) model.open(-1, dir, tmpName, 'replace');
              if (done >= 2) model.write(-1, 0, content);
              if (done >= 3) model.fsync(-1);
              if (done >= 4) model.rename(dir, tmpName, dir, name);
              if (done >= 5) model.fsyncDir(dir);
              model.fds.delete(-1);
            }
          }
        } catch (err) {
          if (!(err instanceof SimulatedCrash)) throw err;
          crashes++;
          note(`crash: ${err.message}`);
          io.restart();
          model.fds.clear();
          openFds.length = 0;
          assertDisk(model, 'cur', `${where} after crash ${err.message}`, log);
        }
      }
      io.simulatePowerLoss();
      model.powerLoss();
      assertDisk(model, 'cur', `seed ${seed} final power loss`, log);
      assert.deepEqual(fs.readdirSync(shadow), [], `seed ${seed}: shadow folder emptied`);
      losses++;
    }
    console.log(`${losses} power losses and ${crashes} kill-point crashes checked against the model`);
    assert.ok(losses > 200 && crashes > 100, `${losses} power losses, ${crashes} crashes`);
  });
});
