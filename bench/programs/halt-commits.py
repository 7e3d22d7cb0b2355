"""Single-row commits for a while, optionally under LiteFS's HALT lock.

usage: halt-commits.py DB MODE SECONDS WARMUP_SECONDS HALT

MODE: WAL (synchronous=NORMAL) or DELETE (synchronous=FULL). HALT 1 takes
a write lock on byte 72 of DB-lock first (F_OFD_SETLKW, as litefs-go), so
the commits on a replica are forwarded to the primary; 0 writes plainly.
Creates t(id, v) if missing. Commits for WARMUP_SECONDS unrecorded, then
for SECONDS, and prints one JSON line: {"commits": n, "seconds": s}.
"""
import fcntl
import json
import os
import sqlite3
import struct
import sys
import time


def main():
    path, mode, seconds, warmup, halt = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "1"
    fd = None
    if halt:
        fd = os.open(path + "-lock", os.O_RDWR)
        fcntl.fcntl(fd, fcntl.F_OFD_SETLKW, struct.pack("hhqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, 72, 1, 0))
    con = sqlite3.connect(path, timeout=10, isolation_level=None)
    con.execute("PRAGMA journal_mode=%s" % mode)
    con.execute("PRAGMA synchronous=%s" % ("NORMAL" if mode == "WAL" else "FULL"))
    con.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
    end = time.monotonic() + warmup
    while time.monotonic() < end:
        con.execute("INSERT INTO t(v) VALUES ('warm-up')")
    n = 0
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        con.execute("INSERT INTO t(v) VALUES ('row')")
        n += 1
    took = time.monotonic() - start
    con.close()
    if fd is not None:
        os.close(fd)
    print(json.dumps({"commits": n, "seconds": took}))


if __name__ == "__main__":
    main()
