"""Writes to a database on a replica under LiteFS's HALT lock, as litefs-go's WithHalt does.

usage: halt-writer.py DB JOURNAL_MODE ROUNDS ROWS_PER_ROUND [TAG [STOP_FILE]]

Each round opens DB-lock read-write (a write lock needs it), takes a write lock on byte 72 with
F_OFD_SETLKW (retrying EINTR, as litefs-go's Halt), inserts
ROWS_PER_ROUND rows into t(v) one transaction each through a fresh
sqlite3 connection in JOURNAL_MODE (a rollback mode is the
connection's, not the file's), closes it, and unlocks (Unhalt) and closes the lock
file. Prints one JSON object: {"ok": rows written, "errors": {message:
count}, "halt_errors": {message: count}}. With STOP_FILE, it also stops
before a round once that file exists.
"""
import errno
import fcntl
import json
import os
import sqlite3
import struct
import sys

HALT_BYTE = 72


def lock(fd, kind):
    # struct flock on Linux x86_64/aarch64: short type, short whence, off_t start, off_t len, pid_t pid (+pad).
    arg = struct.pack("hhqqixxxx", kind, os.SEEK_SET, HALT_BYTE, 1, 0)
    while True:
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLKW, arg)
            return
        except InterruptedError:
            continue


def main():
    path, mode, rounds, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    tag = sys.argv[5] if len(sys.argv) > 5 else "halt"
    stop = sys.argv[6] if len(sys.argv) > 6 else None
    ok = 0
    errors = {}
    halt_errors = {}
    for r in range(rounds):
        if stop is not None and os.path.exists(stop):
            break
        fd = os.open(path + "-lock", os.O_RDWR)
        try:
            try:
                lock(fd, fcntl.F_WRLCK)
            except OSError as e:
                key = errno.errorcode.get(e.errno, str(e.errno))
                halt_errors[key] = halt_errors.get(key, 0) + 1
                continue
            con = sqlite3.connect(path, timeout=5, isolation_level=None)
            try:
                con.execute("PRAGMA journal_mode=%s" % mode)
                for i in range(rows):
                    try:
                        con.execute("INSERT INTO t(v) VALUES (?)", ("%s %d.%d" % (tag, r, i),))
                        ok += 1
                    except sqlite3.Error as e:
                        errors[str(e)] = errors.get(str(e), 0) + 1
            finally:
                con.close()
            lock(fd, fcntl.F_UNLCK)
        finally:
            os.close(fd)
    print(json.dumps({"ok": ok, "errors": errors, "halt_errors": halt_errors}))


if __name__ == "__main__":
    main()
