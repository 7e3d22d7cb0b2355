// The SQLite on-disk formats a replicator needs; see docs/formats.md Part B.
export * from './errors.js';
export * from './positional.js';
export * from './header.js';
export * from './locks.js';
export * from './wal-checksum.js';
export * from './wal.js';
export * from './wal-reader.js';
export * from './journal.js';
export * from './rollback.js';
export * from './shm.js';
export * from './shm-index.js';
