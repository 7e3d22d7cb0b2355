"""Client programs of `npm run bench:replication` (bench/replication.ts).

usage: lag.py init   DB JOURNAL_MODE ROWS
       lag.py lag    PRIMARY_DB REPLICA_DB SECONDS RATE [POLL_GAP_MS [WARMUP_SECONDS]]
       lag.py bulk   PRIMARY_DB MIB PRIMARY_POS REPLICA_POS
       lag.py select DB SECONDS
       lag.py write  DB SECONDS RATE

init creates table t(id INTEGER PRIMARY KEY, v BLOB) on the primary with
ROWS rows (one transaction) in JOURNAL_MODE; WAL runs synchronous=NORMAL.

lag measures replication lag inside ONE process, so both times come from the
same clock: a writer thread commits single-row INSERTs into PRIMARY_DB at RATE
commits/s (0: as fast as it can) for SECONDS and records when each commit
returned; a poller thread reads `SELECT max(id)` on REPLICA_DB in a tight loop
(one long-lived connection, one read transaction per select) and records when
each id was first seen (POLL_GAP_MS > 0: it sleeps that long between
selects instead, to show what the tight loop itself costs). The first
WARMUP_SECONDS (default 0) run the same way but are not recorded. Prints JSON {"lags_ms": [...], "commits", "seconds",
"unseen", "polls", "poll_us", "early"}; an id seen before its commit returned
(possible: the replica may apply before the primary's client gets control
back) counts as lag 0 and is counted in "early".

bulk inserts MIB MiB of 4 KiB randomblob rows in one transaction, then
reads the primary's position file and polls the replica's until it matches;
prints {"commit_s", "catch_up_s", "pos"}.

select reads random primary keys (1..max(id)) for SECONDS on one connection;
prints {"selects", "seconds"}. write commits single-row INSERTs at RATE for
SECONDS; prints {"commits", "seconds"}.
"""
import json
import random
import sqlite3
import sys
import threading
import time

BUSY_TIMEOUT_S = 10.0
ROW = b"x" * 100
CATCH_UP_LIMIT_S = 30.0


def connect(db):
    return sqlite3.connect(db, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)


def set_sync(con):
    # NORMAL with WAL (as the issue asks); DELETE keeps SQLite's default FULL.
    if con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
        con.execute("PRAGMA synchronous=NORMAL")


def init(db, mode, rows):
    con = connect(db)
    con.execute("PRAGMA journal_mode=" + mode)
    con.execute("BEGIN")
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    con.executemany("INSERT INTO t(v) VALUES (?)", [(ROW,) for _ in range(rows)])
    con.execute("COMMIT")
    con.close()


def paced(seconds, rate, body):
    """Calls body() at `rate` per second (0: back to back) for `seconds`; returns (calls, elapsed)."""
    start = time.perf_counter()
    n = 0
    while True:
        now = time.perf_counter()
        if now - start >= seconds:
            break
        if rate > 0:
            due = start + n / rate
            if due > now:
                time.sleep(due - now)
        body()
        n += 1
    return n, time.perf_counter() - start


def lag(primary, replica, seconds, rate, gap_ms, warmup):
    # The poller's Python code and the writer share the GIL; a short switch
    # interval keeps a thread that just returned from SQLite from waiting long.
    sys.setswitchinterval(0.0002)
    wcon = connect(primary)
    set_sync(wcon)
    base = wcon.execute("SELECT max(id) FROM t").fetchone()[0] or 0
    rcon = connect(replica)
    # Wait for the replica to hold the initial rows before timing anything.
    deadline = time.monotonic() + CATCH_UP_LIMIT_S
    while True:
        try:
            if (rcon.execute("SELECT max(id) FROM t").fetchone()[0] or 0) >= base:
                break
        except sqlite3.OperationalError:
            pass
        if time.monotonic() > deadline:
            sys.exit("replica never reached the initial rows")
        time.sleep(0.01)

    committed = {}
    seen = {}
    done = threading.Event()
    last = [base]
    stats = {"polls": 0, "poll_s": 0.0}
    errors = []

    def poll():
        try:
            poll_loop()
        except Exception as e:  # reported, not hidden: the writer keeps going
            errors.append("%s: %s" % (type(e).__name__, e))

    def poll_loop():
        top = base
        while True:
            t0 = time.perf_counter()
            got = rcon.execute("SELECT max(id) FROM t").fetchone()[0] or 0
            t1 = time.perf_counter()
            stats["polls"] += 1
            stats["poll_s"] += t1 - t0
            if got > top:
                for i in range(top + 1, got + 1):
                    seen[i] = t1
                top = got
            if done.is_set() and top >= last[0]:
                return
            if done.is_set() and time.perf_counter() > stop_by[0]:
                return
            if gap_ms > 0:
                time.sleep(gap_ms / 1000)

    stop_by = [float("inf")]
    poller = threading.Thread(target=poll)
    poller.start()

    def commit():
        cur = wcon.execute("INSERT INTO t(v) VALUES (?)", (ROW,))
        committed[cur.lastrowid] = time.perf_counter()

    try:
        if warmup > 0:
            paced(warmup, rate, commit)
            # Only what follows counts; ids seen meanwhile stay in `seen` but are never looked up.
            committed.clear()
            stats["polls"] = 0
            stats["poll_s"] = 0.0
        n, elapsed = paced(seconds, rate, commit)
    finally:
        last[0] = max(committed) if committed else base
        stop_by[0] = time.perf_counter() + CATCH_UP_LIMIT_S
        done.set()
        poller.join()
    wcon.close()
    rcon.close()
    lags = []
    early = 0
    unseen = 0
    for i, t in committed.items():
        if i not in seen:
            unseen += 1
            continue
        d = seen[i] - t
        if d < 0:
            early += 1
            d = 0.0
        lags.append(round(d * 1000, 4))
    polls = stats["polls"]
    print(json.dumps({
        "lags_ms": lags,
        "commits": n,
        "seconds": elapsed,
        "unseen": unseen,
        "errors": errors,
        "early": early,
        "polls": polls,
        "poll_us": stats["poll_s"] / polls * 1e6 if polls else 0,
    }))


def read_pos(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def bulk(primary, mib, primary_pos, replica_pos):
    con = connect(primary)
    set_sync(con)
    # No checkpoint inside COMMIT: the statement must return when the
    # transaction (and its LTX file) is committed, not after the WAL's
    # 16+ MiB were copied into the database.
    con.execute("PRAGMA wal_autocheckpoint=0")
    rows = mib * 1024 * 1024 // 4096
    t0 = time.perf_counter()
    con.execute("BEGIN")
    # 4000-byte blobs: one row per 4 KiB leaf page (no overflow pages).
    con.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO t(v) SELECT randomblob(4000) FROM n", (rows,))
    con.execute("COMMIT")
    t1 = time.perf_counter()
    want = read_pos(primary_pos)
    deadline = t1 + CATCH_UP_LIMIT_S * 4
    while read_pos(replica_pos) != want:
        if time.perf_counter() > deadline:
            sys.exit("replica did not reach %s (has %s)" % (want, read_pos(replica_pos)))
        time.sleep(0.0005)
    t2 = time.perf_counter()
    con.close()
    print(json.dumps({"commit_s": t1 - t0, "catch_up_s": t2 - t1, "pos": want}))


def select(db, seconds):
    con = connect(db)
    top = con.execute("SELECT max(id) FROM t").fetchone()[0]
    rng = random.Random(1)

    def one():
        con.execute("SELECT v FROM t WHERE id = ?", (rng.randint(1, top),)).fetchone()

    n, elapsed = paced(seconds, 0, one)
    con.close()
    print(json.dumps({"selects": n, "seconds": elapsed}))


def write(db, seconds, rate):
    con = connect(db)
    set_sync(con)

    def one():
        con.execute("INSERT INTO t(v) VALUES (?)", (ROW,))

    n, elapsed = paced(seconds, rate, one)
    con.close()
    print(json.dumps({"commits": n, "seconds": elapsed}))


def main():
    cmd = sys.argv[1]
    if cmd == "init":
        init(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "lag":
        lag(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]),
            float(sys.argv[6]) if len(sys.argv) > 6 else 0, float(sys.argv[7]) if len(sys.argv) > 7 else 0)
    elif cmd == "bulk":
        bulk(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif cmd == "select":
        select(sys.argv[2], float(sys.argv[3]))
    elif cmd == "write":
        write(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit("unknown command: " + cmd)


if __name__ == "__main__":
    main()
