/**
 * Forensic folders (ARCHITECTURE §3.3, §8): evidence of a start-up anomaly
 * is moved or copied to `<data>/forensic/<db>/<UTC time>/` with a
 * `report.json`, never deleted. The folder is outside `dbs/` (Go LiteFS
 * opens every `dbs/*` as a database) and outside `ltx/`.
 *
 * Quarantine folders (ARCHITECTURE §3.1) are the same thing under
 * `<data>/quarantine/`: local data a replica's snapshot is about to replace.
 */
import { basename, dirname, join } from 'node:path';
import type { DB } from './db.js';

/** Which root a case's folder lives under; also which event its close() posts. */
export type EvidenceKind = 'forensic' | 'quarantine';

/** One start-up anomaly's (or one quarantine's) evidence, collected into one folder. */
export class ForensicCase {
  readonly dir: string;
  private readonly files: { file: string; from: string; how: 'moved' | 'copied'; size: number | null }[] = [];

  constructor(
    private readonly db: DB,
    readonly reason: string,
    private readonly kind: EvidenceKind = 'forensic',
  ) {
    const io = db.io;
    const root = join(db.ctx.options.dataDir, kind, db.name);
    // Colons are awkward in file names on some systems; the time stays sortable.
    const stamp = new Date(db.ctx.now()).toISOString().replace(/:/g, '-');
    let dir = join(root, stamp);
    for (let n = 1; io.exists(dir); n++) dir = join(root, `${stamp}-${n}`);
    io.mkdirp(dir);
    // New folders are durable once their parents are.
    for (let p = dir; p !== db.ctx.options.dataDir && p !== dirname(p); p = dirname(p)) io.fsyncDir(dirname(p));
    this.dir = dir;
  }

  /** Moves `path` into the folder (under `sub` if given); nothing if it does not exist. */
  move(path: string, sub = ''): void {
    const io = this.db.io;
    const size = io.sizeOf(path);
    if (size === null) return;
    const to = this.target(path, sub);
    io.rename(path, to);
    this.files.push({ file: this.relative(to), from: path, how: 'moved', size });
  }

  /** Copies `path` into the folder (durably); nothing if it does not exist. */
  copy(path: string, sub = ''): void {
    const io = this.db.io;
    const size = io.sizeOf(path);
    if (size === null) return;
    const to = this.target(path, sub);
    io.copyFile(path, to);
    this.files.push({ file: this.relative(to), from: path, how: 'copied', size });
  }

  /**
   * Writes report.json, makes every move durable, logs one line and posts
   * the event. `details` holds positions and whatever explains the case.
   */
  close(details: Record<string, unknown>, rebasedTXID: string | null = null): void {
    const io = this.db.io;
    const report = {
      db: this.db.name,
      reason: this.reason,
      time: new Date(this.db.ctx.now()).toISOString(),
      ...details,
      ...(this.kind === 'forensic' ? { rebasedTXID } : {}),
      files: this.files,
    };
    io.writeFileAtomic(join(this.dir, 'report.json'), Buffer.from(`${JSON.stringify(report, null, 2)}\n`));
    const dirs = new Set(this.files.filter((f) => f.how === 'moved').flatMap((f) => [dirname(f.from), dirname(join(this.dir, f.file))]));
    for (const d of dirs) io.fsyncDir(d);
    if (this.kind === 'quarantine') {
      this.db.ctx.log(`WARN ${this.db.name}: ${this.reason}; local data quarantined in ${this.dir}`);
      this.db.ctx.post({ type: 'quarantine', db: this.db.name, reason: this.reason, dir: this.dir });
      return;
    }
    this.db.ctx.log(`WARN ${this.db.name}: ${this.reason}; evidence in ${this.dir}${rebasedTXID === null ? '' : `; re-based onto snapshot TXID ${rebasedTXID}`}`);
    this.db.ctx.post({ type: 'forensic', db: this.db.name, reason: this.reason, dir: this.dir, rebasedTXID });
  }

  private target(path: string, sub: string): string {
    const io = this.db.io;
    const folder = sub === '' ? this.dir : join(this.dir, sub);
    if (sub !== '') io.mkdirp(folder);
    return join(folder, basename(path));
  }

  private relative(to: string): string {
    return to.slice(this.dir.length + 1);
  }
}
