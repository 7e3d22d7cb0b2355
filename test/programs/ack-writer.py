"""Writes rows one transaction at a time and reports each acknowledged commit.

usage: ack-writer.py DB SECONDS [STOP_FILE]

Inserts ids 1, 2, 3, ... into t(id) (the table must exist), each in its own
BEGIN IMMEDIATE ... COMMIT. Prints "ack <id>" after a COMMIT returned
success, "err <id> <message>" after a failure (the id is not reused), and
keeps going until SECONDS have passed or STOP_FILE exists. A commit that returned success is an
acknowledged write: it must survive (in the cluster or in a quarantine copy).
"""
import os
import sqlite3
import sys
import time


def main():
    db, seconds = sys.argv[1], float(sys.argv[2])
    stop_file = sys.argv[3] if len(sys.argv) > 3 else None
    deadline = time.monotonic() + seconds
    con = None
    next_id = 1
    while time.monotonic() < deadline and not (stop_file and os.path.exists(stop_file)):
        i = next_id
        next_id += 1
        try:
            if con is None:
                con = sqlite3.connect(db, timeout=0.5, isolation_level=None)
            con.execute("BEGIN IMMEDIATE")
            con.execute("INSERT INTO t(id) VALUES (?)", (i,))
            con.execute("COMMIT")
            print("ack %d" % i, flush=True)
        except sqlite3.Error as e:
            print("err %d %s" % (i, e), flush=True)
            try:
                if con is not None and con.in_transaction:
                    con.execute("ROLLBACK")
            except sqlite3.Error:
                con.close()
                con = None
            time.sleep(0.02)
    if con is not None:
        con.close()


if __name__ == "__main__":
    main()
