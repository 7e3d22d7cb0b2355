"""The FUSE suite's SQLite workload for python3's sqlite3 module.

usage: sqlite-workload.py DB JOURNAL_MODE

Prints one line per query result; the test compares the output on a plain
folder with the output on the mount. Deterministic (no random, no times).
"""
import sqlite3
import sys


def main():
    path, mode = sys.argv[1], sys.argv[2]
    # Autocommit mode: transactions below are explicit.
    con = sqlite3.connect(path, isolation_level=None)
    out = []

    def q(tag, sql, args=()):
        for row in con.execute(sql, args):
            out.append(tag + "|" + "|".join("" if v is None else str(v) for v in row))

    q("mode", "PRAGMA journal_mode=" + mode)
    con.execute("PRAGMA cache_size=40")
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, score INTEGER, pad BLOB)")
    con.execute("CREATE TABLE log(id INTEGER PRIMARY KEY, msg TEXT)")
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?)",
        ((i, "name-%d" % i, (i * 7919) % 1000, bytes([i % 251]) * (200 + i % 97)) for i in range(1, 3001)),
    )
    con.execute("COMMIT")
    con.execute("CREATE INDEX t_score ON t(score)")
    # Many small autocommit transactions: each is a full journal/WAL commit.
    for i in range(1, 301):
        con.execute("UPDATE t SET score = score + 1 WHERE id = ?", (i * 7,))
    con.execute("DELETE FROM t WHERE id % 5 = 0")
    q("after-dml", "SELECT count(*), sum(score), min(id), max(id) FROM t")

    con.execute("BEGIN")
    con.execute("DELETE FROM t")
    con.execute("INSERT INTO log(msg) VALUES ('rolled back')")
    con.execute("ROLLBACK")
    q("after-rollback", "SELECT count(*), (SELECT count(*) FROM log) FROM t")

    con.execute("BEGIN")
    con.execute("SAVEPOINT sp")
    con.execute("UPDATE t SET name = 'x'")
    con.execute("ROLLBACK TO sp")
    con.execute("RELEASE sp")
    con.executemany("INSERT INTO log(msg) VALUES (?)", (("row %d" % i,) for i in range(200)))
    con.execute("UPDATE t SET pad = ? WHERE id BETWEEN 1000 AND 1200", (b"\x01" * 1500,))
    con.execute("COMMIT")
    con.execute("DELETE FROM t WHERE id > 2500")
    con.execute("VACUUM")
    q("after-vacuum", "SELECT count(*), sum(length(pad)), (SELECT count(*) FROM log) FROM t")
    q("top", "SELECT score, count(*) FROM t GROUP BY score ORDER BY count(*) DESC, score LIMIT 5")
    q("range", "SELECT id, name, score, hex(substr(pad, 1, 4)) FROM t WHERE score BETWEEN 100 AND 103 ORDER BY id")
    q("digest", "SELECT count(*), sum(id * score), sum(length(name)), sum(unicode(substr(pad, 1, 1))) FROM t")
    con.execute("UPDATE log SET msg = msg || '!' WHERE id < 10")
    if mode.lower() == "wal":
        q("checkpoint", "PRAGMA wal_checkpoint(PASSIVE)")
        q("checkpoint", "PRAGMA wal_checkpoint(TRUNCATE)")
    q("integrity", "PRAGMA integrity_check")
    con.close()
    print("\n".join(out))


if __name__ == "__main__":
    main()
