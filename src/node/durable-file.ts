/** Small files the node keeps in the data directory (cluster id, epoch), replaced atomically and durably. */
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** tmp, fsync, rename, fsync the folder: after a crash the file holds the old or the new text, whole. */
export function writeFileDurably(path: string, text: string): void {
  const tmp = path + '.tmp';
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
