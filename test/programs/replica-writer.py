"""Keeps trying to write on a replica's mount, as a misconfigured application would.

usage: replica-writer.py DB SECONDS

Each attempt inserts one row into t(v) in autocommit mode; every failure
closes the connection and reopens it after 5 ms. Prints a JSON object
mapping each error message to its count (and "ok" to writes that
succeeded, which on a replica must be 0).
"""
import json
import sqlite3
import sys
import time


def main():
    path, seconds = sys.argv[1], float(sys.argv[2])
    end = time.monotonic() + seconds
    counts = {}
    con = None
    while time.monotonic() < end:
        try:
            if con is None:
                con = sqlite3.connect("file:%s?mode=rw" % path, uri=True, timeout=0.1, isolation_level=None)
            con.execute("INSERT INTO t(v) VALUES (randomblob(100))")
            counts["ok"] = counts.get("ok", 0) + 1
        except sqlite3.Error as e:
            counts[str(e)] = counts.get(str(e), 0) + 1
            try:
                con.close()
            except Exception:
                pass
            con = None
            time.sleep(0.005)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
