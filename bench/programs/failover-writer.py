"""Client program of `npm run bench:failover` (bench/failover.ts).

usage: failover-writer.py BUSY_MS PAUSE_MS DB_0 DB_1 ...

Commits single-row INSERTs (autocommit, one transaction each) into table
t(id INTEGER PRIMARY KEY, v BLOB) of whichever DB_i accepts them, until its
stdin is closed. It starts with DB_0; when a commit fails there it drops
that connection and tries the next path (round robin), so it finds the
primary without asking anyone. BUSY_MS is SQLite's busy timeout (how long a
refused lock is retried before SQLITE_BUSY); PAUSE_MS the sleep after each
acknowledged commit; after a failure it sleeps 1 ms.

Paths are opened with mode=rw (never create): a node whose mount is gone
leaves a plain empty folder behind, where SQLite must not make a database.

Output, one line each, flushed at once (times on CLOCK_MONOTONIC in ms,
time.monotonic(): the same clock as node's process.hrtime):
  ack NODE T_MS        a commit on DB_NODE returned success
  err NODE T_MS MSG    a failure on DB_NODE whose message differs from the
                       previous failure on that node (repeats are counted)
  done {"acks": N, "errors": N}
"""
import json
import sqlite3
import sys
import threading
import time

ROW = b"x" * 100


def now_ms():
    return time.monotonic() * 1000.0


def main():
    busy_ms, pause_ms = float(sys.argv[1]), float(sys.argv[2])
    paths = sys.argv[3:]
    stop = threading.Event()

    def wait_eof():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_eof, daemon=True).start()

    conns = {}
    last_err = {}
    node = 0
    acks = 0
    errors = 0
    out = sys.stdout
    while not stop.is_set():
        try:
            con = conns.get(node)
            if con is None:
                con = sqlite3.connect("file:%s?mode=rw" % paths[node], uri=True, timeout=busy_ms / 1000.0, isolation_level=None)
                conns[node] = con
                con.execute("PRAGMA synchronous=NORMAL")
            con.execute("INSERT INTO t(v) VALUES (?)", (ROW,))
            out.write("ack %d %.3f\n" % (node, now_ms()))
            out.flush()
            acks += 1
            last_err.pop(node, None)
            if pause_ms > 0:
                time.sleep(pause_ms / 1000.0)
        except sqlite3.Error as e:
            t = now_ms()
            errors += 1
            msg = str(e).replace("\n", " ")
            if last_err.get(node) != msg:
                last_err[node] = msg
                out.write("err %d %.3f %s\n" % (node, t, msg))
                out.flush()
            con = conns.pop(node, None)
            if con is not None:
                try:
                    con.close()
                except sqlite3.Error:
                    pass
            node = (node + 1) % len(paths)
            time.sleep(0.001)
    for con in conns.values():
        try:
            con.close()
        except sqlite3.Error:
            pass
    out.write("done %s\n" % json.dumps({"acks": acks, "errors": errors}))
    out.flush()


if __name__ == "__main__":
    main()
