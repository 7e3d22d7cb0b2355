"""Client program of `npm run bench:failover` (bench/failover.ts).

usage: failover-writer.py BUSY_MS PAUSE_MS DB_0 DB_1 ...

Commits single-row INSERTs (autocommit, one transaction each) into table
t(id INTEGER PRIMARY KEY, v BLOB) of whichever DB_i accepts them, until its
stdin is closed: one thread per path, each committing to its own mount in a
loop, so only the primary's thread succeeds and nobody has to be asked who
the primary is. One thread per node (not one thread trying the paths in
turn) because a connection to a mount whose daemon was SIGKILLed can block
for ~10 s inside SQLite (every -shm lock fails, SQLite reads that as BUSY and
retries its WAL read lock until it gives up with SQLITE_PROTOCOL), which
would measure SQLite's retry loop, not the cluster. BUSY_MS is SQLite's busy
timeout (how long a refused lock, e.g. a fenced primary's, is retried before
SQLITE_BUSY); PAUSE_MS the sleep after each acknowledged commit; after a
failure a thread drops its connection and sleeps 5 ms.

Paths are opened with mode=rw (never create): a node whose mount is gone
leaves a plain empty folder behind, where SQLite must not make a database.

Output, one line each, flushed at once (times on CLOCK_MONOTONIC in ms,
time.monotonic(): the same clock as node's process.hrtime):
  ack NODE T_MS        a commit on DB_NODE returned success
  err NODE T_MS MSG    a failure on DB_NODE whose message differs from the
                       previous failure on that node (repeats only counted)
  done {"acks": N, "errors": N}
"""
import json
import sqlite3
import sys
import threading
import time

ROW = b"x" * 100
# After a failed attempt (a replica refuses at once with EACCES): bounds the load on replicas.
FAIL_PAUSE_S = 0.005


def now_ms():
    return time.monotonic() * 1000.0


def main():
    busy_ms, pause_ms = float(sys.argv[1]), float(sys.argv[2])
    paths = sys.argv[3:]
    stop = threading.Event()
    lock = threading.Lock()
    counts = {"acks": 0, "errors": 0}
    out = sys.stdout

    def emit(line):
        with lock:
            out.write(line + "\n")
            out.flush()

    def worker(node):
        con = None
        last_err = None
        while not stop.is_set():
            try:
                if con is None:
                    con = sqlite3.connect("file:%s?mode=rw" % paths[node], uri=True, timeout=busy_ms / 1000.0,
                                          isolation_level=None, check_same_thread=False)
                    con.execute("PRAGMA synchronous=NORMAL")
                con.execute("INSERT INTO t(v) VALUES (?)", (ROW,))
                emit("ack %d %.3f" % (node, now_ms()))
                with lock:
                    counts["acks"] += 1
                last_err = None
                if pause_ms > 0:
                    time.sleep(pause_ms / 1000.0)
            except sqlite3.Error as e:
                t = now_ms()
                with lock:
                    counts["errors"] += 1
                msg = str(e).replace("\n", " ")
                if msg != last_err:
                    last_err = msg
                    emit("err %d %.3f %s" % (node, t, msg))
                if con is not None:
                    try:
                        con.close()
                    except sqlite3.Error:
                        pass
                    con = None
                time.sleep(FAIL_PAUSE_S)
        if con is not None:
            try:
                con.close()
            except sqlite3.Error:
                pass

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(paths))]
    for th in threads:
        th.start()
    sys.stdin.read()
    stop.set()
    # A thread stuck on a dead mount may never return: do not wait for it forever.
    for th in threads:
        th.join(timeout=1)
    emit("done %s" % json.dumps(counts))


if __name__ == "__main__":
    main()
