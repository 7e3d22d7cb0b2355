"""A hot journal left by a killed writer, met by a reader that has been
asking for that journal all along (rollback journal mode, DELETE).

usage: hot-journal.py DB READS

1. Creates table t with 3,000 rows of 200 random bytes, journal_mode=DELETE,
   and records a digest of the table.
2. Runs READS read transactions on one connection: each one makes SQLite
   look for DB-journal (its hot-journal check) and find nothing.
3. Starts a writer process that updates every row with cache_size=5, so
   SQLite syncs its journal and spills changed pages into the database
   file, then kills itself (SIGKILL) before COMMIT: a hot journal.
4. Reads the table again on the reader's connection at once: SQLite must
   find the journal, roll the database back and see the digest of step 1.

Prints JSON {"before": digest, "after": digest, "integrity": [...],
"journal_seen": bool, "writer_status": n}.
"""
import hashlib
import json
import os
import sqlite3
import subprocess
import sys

WRITER = r"""
import os, signal, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute('PRAGMA cache_size=5')
db.execute('BEGIN IMMEDIATE')
db.execute('UPDATE t SET v = randomblob(200)')
# The spilled pages are in the database file and the journal is synced: die uncommitted.
os.kill(os.getpid(), signal.SIGKILL)
"""


def digest(conn):
    h = hashlib.sha256()
    for (i, v) in conn.execute('SELECT id, v FROM t ORDER BY id'):
        h.update(i.to_bytes(4, 'big'))
        h.update(v)
    return h.hexdigest()


def main():
    path, reads = sys.argv[1], int(sys.argv[2])
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute('PRAGMA journal_mode=DELETE')
    setup.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)')
    setup.execute('BEGIN')
    for i in range(3000):
        setup.execute('INSERT INTO t (id, v) VALUES (?, randomblob(200))', (i + 1,))
    setup.execute('COMMIT')
    setup.close()

    reader = sqlite3.connect(path, isolation_level=None, timeout=10)
    before = digest(reader)
    for i in range(reads):
        reader.execute('SELECT v FROM t WHERE id = ?', (i % 3000 + 1,)).fetchone()

    writer = subprocess.run([sys.executable, '-c', WRITER, path], capture_output=True)
    journal_seen = os.path.exists(path + '-journal')

    after = digest(reader)
    integrity = [r[0] for r in reader.execute('PRAGMA integrity_check')]
    reader.close()
    print(json.dumps({
        'before': before,
        'after': after,
        'integrity': integrity,
        'journal_seen': journal_seen,
        'writer_status': writer.returncode,
    }))


main()
