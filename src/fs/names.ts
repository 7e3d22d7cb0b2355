/**
 * LiteFS's names in the mount root (ref §4.2): a suffix says which file of a
 * database a name means; suffixes are checked in LiteFS's order, so a
 * database cannot itself be named `x-wal`.
 */

/** The files of one database as the mount shows them. */
export type FileKind = 'database' | 'journal' | 'wal' | 'shm' | 'pos' | 'lock';

export const FILE_KINDS: readonly FileKind[] = ['database', 'journal', 'wal', 'shm', 'pos', 'lock'];

const SUFFIXES: readonly (readonly [string, FileKind])[] = [
  ['-journal', 'journal'],
  ['-wal', 'wal'],
  ['-shm', 'shm'],
  ['-pos', 'pos'],
  ['-lock', 'lock'],
];

/** Shown on every node: milliseconds behind the primary. */
export const LAG_NAME = '.lag';
/** Shown on a replica that knows its primary: the primary's hostname. */
export const PRIMARY_NAME = '.primary';

export interface ParsedName {
  readonly db: string;
  readonly kind: FileKind;
}

/**
 * Database name and file kind of a root entry name, or null for a name the
 * mount never shows (an empty database name). `<db>-lock` is the HALT lock
 * file (ref §8.3): it exists, but is not listed.
 */
export function parseName(name: string): ParsedName | null {
  for (const [suffix, kind] of SUFFIXES) {
    if (name.endsWith(suffix)) {
      const db = name.slice(0, -suffix.length);
      return db === '' ? null : { db, kind };
    }
  }
  return { db: name, kind: 'database' };
}

export function fileName(db: string, kind: FileKind): string {
  return kind === 'database' ? db : `${db}-${kind}`;
}
