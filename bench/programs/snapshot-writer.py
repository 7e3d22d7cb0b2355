"""Client program of `npm run bench:snapshot` (bench/snapshot.ts).

usage: snapshot-writer.py init  DB JOURNAL_MODE MIB
       snapshot-writer.py write DB STOP_FILE

init creates big(v BLOB) with MIB MiB of 4000-byte randomblob rows (one
transaction) and an empty t(id INTEGER PRIMARY KEY) in JOURNAL_MODE (WAL
runs synchronous=NORMAL).

write commits single-row INSERTs into t, one after another, until STOP_FILE
exists, and prints JSON {"commits", "seconds", "p50_ms", "max_ms",
"slow": [[start, ms], ...]}: "slow" lists every commit that took 20 ms or
more with its start as seconds since the epoch (the caller's clock too).
SQLITE_BUSY waits in SQLite's busy handler (10 s) and counts in the time.
"""
import json
import os
import sqlite3
import sys
import time

BUSY_TIMEOUT_S = 10.0
SLOW_MS = 20.0


def connect(path, mode):
    con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    if mode.upper() == "WAL":
        con.execute("PRAGMA synchronous=NORMAL")
    return con


def init(path, mode, mib):
    con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    con.execute("PRAGMA journal_mode=%s" % mode)
    con.execute("CREATE TABLE big(v BLOB)")
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY)")
    rows = int(mib * 1024 * 1024 / 4000)
    con.execute(
        "INSERT INTO big(v) SELECT randomblob(4000) FROM "
        "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) SELECT x FROM c)",
        (rows,),
    )
    con.close()


def write(path, stop_file):
    mode = "WAL" if os.path.exists(path + "-wal") else "DELETE"
    con = connect(path, mode)
    durations = []
    slow = []
    began = time.monotonic()
    while not os.path.exists(stop_file):
        wall = time.time()
        t0 = time.monotonic()
        con.execute("INSERT INTO t(id) VALUES (NULL)")
        ms = (time.monotonic() - t0) * 1000.0
        durations.append(ms)
        if ms >= SLOW_MS:
            slow.append([wall, ms])
    seconds = time.monotonic() - began
    con.close()
    durations.sort()
    print(json.dumps({
        "commits": len(durations),
        "seconds": seconds,
        "p50_ms": durations[len(durations) // 2] if durations else 0,
        "max_ms": durations[-1] if durations else 0,
        "slow": slow,
    }))


def main():
    cmd = sys.argv[1]
    if cmd == "init":
        init(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    elif cmd == "write":
        write(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit("unknown command %s" % cmd)


if __name__ == "__main__":
    main()
