/**
 * The passthrough inode table on a temp folder: node ids are st_ino, lookup
 * counts, descriptors closed on forget, and the name-kept fallback once the
 * descriptor budget is spent.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FuseError } from '../../../src/fuse/errors.js';
import { InodeTable } from '../../../src/fuse/passthrough/inodes.js';

const root = mkdtempSync(join(tmpdir(), 'fuse-inodes-unit-'));
after(() => rmSync(root, { recursive: true, force: true }));

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('InodeTable', () => {
  test('node ids are the backing st_ino; lookups count; forget closes the descriptor', () => {
    const src = join(root, 'count');
    mkdirSync(src);
    writeFileSync(join(src, 'a'), 'A');
    const before = openFds();
    const t = new InodeTable(src);
    const st = lstatSync(join(src, 'a'));
    const id = t.remember(st, 1, 'a');
    assert.equal(id, st.ino);
    assert.equal(t.remember(st, 1, 'a'), id);
    assert.equal(t.lookups(id), 2);
    assert.equal(readFileSync(t.path(id), 'utf8'), 'A');
    t.forget(id, 1);
    assert.equal(t.size, 1);
    t.forget(id, 1);
    assert.equal(t.size, 0);
    assert.throws(() => t.path(id), FuseError);
    t.close();
    assert.equal(openFds(), before, 'no descriptor left open');
  });

  test('a held folder keeps working after it is renamed behind the table', () => {
    const src = join(root, 'rename');
    mkdirSync(join(src, 'd'), { recursive: true });
    writeFileSync(join(src, 'd', 'f'), 'F');
    const t = new InodeTable(src);
    const d = t.remember(lstatSync(join(src, 'd')), 1, 'd');
    renameSync(join(src, 'd'), join(src, 'e'));
    assert.equal(readFileSync(t.childPath(d, 'f'), 'utf8'), 'F');
    assert.equal(t.realPath(d), join(src, 'e'));
    t.close();
  });

  test('past the descriptor budget, inodes are kept by name and still resolve', () => {
    const src = join(root, 'budget');
    mkdirSync(join(src, 'd'), { recursive: true });
    writeFileSync(join(src, 'd', 'f'), 'F');
    const t = new InodeTable(src, 1);
    const d = t.remember(lstatSync(join(src, 'd')), 1, 'd'); // held by descriptor
    const f = t.remember(lstatSync(join(src, 'd', 'f')), d, 'f'); // kept by name
    assert.match(t.path(d), /^\/proc\/self\/fd\/\d+$/);
    assert.match(t.path(f), /^\/proc\/self\/fd\/\d+\/f$/);
    assert.equal(t.stat(f).size, 1);
    assert.equal(readFileSync(t.path(f), 'utf8'), 'F');
    t.close();
  });

  test('names with a slash, "." or ".." are refused', () => {
    const src = join(root, 'names');
    mkdirSync(src);
    const t = new InodeTable(src);
    for (const bad of ['a/b', '.', '..', '']) assert.throws(() => t.childPath(1, bad), FuseError, bad);
    t.close();
  });
});
