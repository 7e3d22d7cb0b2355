"""Opens DB in a fresh process and prints its integrity_check result, the
journal mode and a digest of every table's rows, for comparing two copies.

usage: sqlite-check.py DB
"""
import hashlib
import sqlite3
import sys


def main():
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    print("integrity|" + "|".join(r[0] for r in con.execute("PRAGMA integrity_check")))
    print("journal_mode|" + con.execute("PRAGMA journal_mode").fetchone()[0])
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    for name in tables:
        h = hashlib.sha256()
        n = 0
        for row in con.execute('SELECT * FROM "%s" ORDER BY rowid' % name):
            h.update(repr(row).encode())
            n += 1
        print("table|%s|%d|%s" % (name, n, h.hexdigest()[:16]))
    con.close()


if __name__ == "__main__":
    main()
