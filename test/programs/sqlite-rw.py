"""Concurrent SQLite readers and a writer, for the FUSE suite.

usage: sqlite-rw.py init   DB JOURNAL_MODE
       sqlite-rw.py writer DB SECONDS
       sqlite-rw.py reader DB SECONDS
       sqlite-rw.py check  DB

The writer commits one transaction after another for SECONDS: each inserts
row id = n+1 (with a 300..900-byte payload) and sets counter.n = n+1. It
prints JSON {"committed": n, "busy": retries, "errors": [...]} where
committed counts only COMMITs that returned success.

A reader runs read transactions for SECONDS, each checking that count(*),
max(id) and counter.n agree and never go backwards; it prints JSON
{"reads": k, "busy": retries, "errors": [...], "last": n}.

SQLITE_BUSY ("database is locked") is retried and counted, never an error;
every other exception and every inconsistency is an error.
"""
import json
import os
import sqlite3
import sys
import time

BUSY_TIMEOUT_S = 10.0
GRACE_S = 30.0


def is_busy(e):
    msg = str(e)
    return "locked" in msg or "busy" in msg


def connect(db):
    return sqlite3.connect(db, timeout=BUSY_TIMEOUT_S, isolation_level=None)


def init(db, mode):
    con = connect(db)
    got = con.execute("PRAGMA journal_mode=" + mode).fetchone()[0]
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
    con.execute("CREATE TABLE counter(n INTEGER NOT NULL)")
    con.execute("INSERT INTO counter VALUES (0)")
    con.close()
    print(json.dumps({"journal_mode": got}))


def writer(db, seconds):
    con = connect(db)
    committed, busy, errors = 0, 0, []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(errors) < 20:
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            if is_busy(e):
                busy += 1
                continue
            errors.append("begin: %s" % e)
            continue
        try:
            n = committed + 1
            con.execute("INSERT INTO t(id, payload) VALUES (?, ?)", (n, os.urandom(300 + n % 600)))
            con.execute("UPDATE counter SET n = ?", (n,))
        except sqlite3.Error as e:
            if is_busy(e):
                busy += 1
            else:
                errors.append("write %d: %s" % (committed + 1, e))
            # The daemon may be gone (killed mid-write): a failed rollback is one more error, not a crash.
            try:
                con.execute("ROLLBACK")
            except sqlite3.Error as e2:
                errors.append("rollback: %s" % e2)
            continue
        # A busy COMMIT leaves the transaction open: retry until it commits.
        while True:
            try:
                con.execute("COMMIT")
                committed += 1
                break
            except sqlite3.Error as e:
                if not is_busy(e):
                    errors.append("commit %d: %s" % (committed + 1, e))
                    try:
                        con.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                    break
                busy += 1
    try:
        con.close()
    except sqlite3.Error as e:
        errors.append("close: %s" % e)
    print(json.dumps({"committed": committed, "busy": busy, "errors": errors}))


def reader(db, seconds):
    con = connect(db)
    reads, busy, errors, last = 0, 0, [], 0
    deadline = time.monotonic() + seconds
    # Past the deadline, keep trying (up to GRACE_S) until one read completed:
    # a reader starved by unfair locking is slow, not broken.
    while (time.monotonic() < deadline or (reads == 0 and time.monotonic() < deadline + GRACE_S)) and len(errors) < 20:
        try:
            con.execute("BEGIN")
            count, max_id = con.execute("SELECT count(*), coalesce(max(id), 0) FROM t").fetchone()
            (n,) = con.execute("SELECT n FROM counter").fetchone()
            con.execute("COMMIT")
        except sqlite3.Error as e:
            if con.in_transaction:
                con.execute("ROLLBACK")
            if is_busy(e):
                busy += 1
            else:
                errors.append("read: %s" % e)
            continue
        reads += 1
        if not (count == max_id == n):
            errors.append("inconsistent snapshot: count=%d max(id)=%d counter=%d" % (count, max_id, n))
        if n < last:
            errors.append("went backwards: %d after %d" % (n, last))
        last = n
    con.close()
    print(json.dumps({"reads": reads, "busy": busy, "errors": errors, "last": last}))


def check(db):
    con = connect(db)
    integrity = [r[0] for r in con.execute("PRAGMA integrity_check")]
    count, max_id = con.execute("SELECT count(*), coalesce(max(id), 0) FROM t").fetchone()
    (n,) = con.execute("SELECT n FROM counter").fetchone()
    con.close()
    print(json.dumps({"integrity": integrity, "count": count, "max_id": max_id, "counter": n}))


def main():
    role, db = sys.argv[1], sys.argv[2]
    if role == "init":
        init(db, sys.argv[3])
    elif role == "writer":
        writer(db, float(sys.argv[3]))
    elif role == "reader":
        reader(db, float(sys.argv[3]))
    elif role == "check":
        check(db)
    else:
        sys.exit("unknown role " + role)


if __name__ == "__main__":
    main()
