"""Bank-transfer invariant for the cluster suite.

usage: bank.py init     DB JOURNAL_MODE ACCOUNTS
       bank.py transfer DB COUNT SEED
       bank.py check    DB SECONDS EXPECTED_TOTAL

init creates ACCOUNTS accounts with balance 1000 each (one transaction).
transfer commits COUNT transactions, each moving a random amount between two
random accounts (the total never changes); prints JSON {"committed": n}.
check runs read transactions for SECONDS: each reads sum(balance) and, every
tenth, PRAGMA quick_check; prints JSON {"reads": k, "checks": c, "busy": b,
"violations": [...], "errors": [...]}. A wrong total or a failed check is a
violation; SQLITE_BUSY/locked is retried and counted; any other exception
(SQLITE_CORRUPT, "locking protocol", a missing table before the first sync
excepted: "no such table") is an error.
"""
import json
import random
import sqlite3
import sys
import time

BUSY_TIMEOUT_S = 10.0


def is_busy(e):
    msg = str(e)
    return "locked" in msg or "busy" in msg


def connect(db):
    return sqlite3.connect(db, timeout=BUSY_TIMEOUT_S, isolation_level=None)


def init(db, mode, accounts):
    con = connect(db)
    con.execute("PRAGMA journal_mode=" + mode)
    con.execute("BEGIN")
    con.execute("CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)")
    con.executemany("INSERT INTO accounts VALUES (?, 1000)", [(i,) for i in range(accounts)])
    con.execute("COMMIT")
    con.close()


def transfer(db, count, seed):
    rng = random.Random(seed)
    con = connect(db)
    n = con.execute("SELECT count(*) FROM accounts").fetchone()[0]
    committed = 0
    while committed < count:
        a, b = rng.randrange(n), rng.randrange(n)
        amount = rng.randrange(1, 100)
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", (amount, a))
            con.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (amount, b))
            con.execute("COMMIT")
            committed += 1
        except sqlite3.OperationalError as e:
            if not is_busy(e):
                raise
            if con.in_transaction:
                con.execute("ROLLBACK")
    con.close()
    print(json.dumps({"committed": committed}))


def check(db, seconds, expected):
    """One long-lived connection, as an application holds it: its page cache
    must notice every change the replica applies (a new connection would
    start with an empty cache and hide stale-cache bugs)."""
    reads, checks, busy = 0, 0, 0
    violations, errors = [], []
    deadline = time.monotonic() + seconds
    con = None
    while time.monotonic() < deadline and len(errors) + len(violations) < 20:
        try:
            if con is None:
                con = connect(db)
            con.execute("BEGIN")
            total = con.execute("SELECT sum(balance) FROM accounts").fetchone()[0]
            con.execute("COMMIT")
            reads += 1
            if total != expected:
                violations.append("total %s != %s" % (total, expected))
            if reads % 10 == 0:
                result = con.execute("PRAGMA quick_check").fetchone()[0]
                checks += 1
                if result != "ok":
                    violations.append("quick_check: %s" % result)
        except sqlite3.OperationalError as e:
            if con is not None and con.in_transaction:
                con.execute("ROLLBACK")
            if is_busy(e):
                busy += 1
            elif "no such table" in str(e):
                time.sleep(0.01)
            else:
                errors.append("%s: %s" % (type(e).__name__, e))
        except sqlite3.DatabaseError as e:
            errors.append("%s: %s" % (type(e).__name__, e))
            if con is not None:
                con.close()
                con = None
    if con is not None:
        con.close()
    print(json.dumps({"reads": reads, "checks": checks, "busy": busy, "violations": violations, "errors": errors}))


def main():
    cmd, db = sys.argv[1], sys.argv[2]
    if cmd == "init":
        init(db, sys.argv[3], int(sys.argv[4]))
    elif cmd == "transfer":
        transfer(db, int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "check":
        check(db, float(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("unknown command: " + cmd)


if __name__ == "__main__":
    main()
