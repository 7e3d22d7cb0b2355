"""An interactive client of LiteFS's HALT lock, driven line by line on stdin.

usage: halt-session.py DB

Commands (one per line), each answered with one JSON line on stdout:
  open                open DB-lock read-write (a new open file description)
  halt                F_OFD_SETLKW F_WRLCK on byte 72 -> {"ok": true} or {"errno": "EIO"}
  try                 F_OFD_SETLK (non-blocking) F_WRLCK on byte 72 -> as halt
  read                F_OFD_SETLKW F_RDLCK on byte 72 -> as halt
  range START LEN     F_OFD_SETLKW F_WRLCK on START..START+LEN-1 -> as halt
  getlk               F_OFD_GETLK F_WRLCK on byte 72 -> {"type": "F_WRLCK" | "F_UNLCK"}
  unhalt              F_OFD_SETLK F_UNLCK on byte 72 -> {"ok": true}
  close               close DB-lock -> {"ok": true}
  sql MODE STATEMENT  run STATEMENT in a new connection in journal mode MODE
                      (autocommit) -> {"ok": true} or {"error": "..."}
  quit                exit
"""
import errno
import fcntl
import json
import os
import sqlite3
import struct
import sys

HALT_BYTE = 72
FLOCK = "hhqqixxxx"  # struct flock on Linux x86_64/aarch64


def flock(kind, start=HALT_BYTE, length=1):
    return struct.pack(FLOCK, kind, os.SEEK_SET, start, length, 0)


def lock(fd, cmd, arg):
    while True:
        try:
            return fcntl.fcntl(fd, cmd, arg)
        except InterruptedError:
            continue


def main():
    path = sys.argv[1]
    fd = None
    for line in sys.stdin:
        words = line.split(None, 2)
        if not words:
            continue
        cmd = words[0]
        try:
            if cmd == "quit":
                return
            if cmd == "open":
                fd = os.open(path + "-lock", os.O_RDWR)
                out = {"ok": True}
            elif cmd in ("halt", "try", "read", "range"):
                if cmd == "range":
                    start, length = int(words[1]), int(words[2])
                    arg = flock(fcntl.F_WRLCK, start, length)
                else:
                    arg = flock(fcntl.F_RDLCK if cmd == "read" else fcntl.F_WRLCK)
                lock(fd, fcntl.F_OFD_SETLK if cmd == "try" else fcntl.F_OFD_SETLKW, arg)
                out = {"ok": True}
            elif cmd == "getlk":
                res = lock(fd, fcntl.F_OFD_GETLK, flock(fcntl.F_WRLCK))
                kind = struct.unpack(FLOCK, res)[0]
                out = {"type": "F_WRLCK" if kind == fcntl.F_WRLCK else "F_RDLCK" if kind == fcntl.F_RDLCK else "F_UNLCK"}
            elif cmd == "unhalt":
                lock(fd, fcntl.F_OFD_SETLK, flock(fcntl.F_UNLCK))
                out = {"ok": True}
            elif cmd == "close":
                os.close(fd)
                fd = None
                out = {"ok": True}
            elif cmd == "sql":
                mode, statement = words[1], words[2]
                con = sqlite3.connect(path, timeout=0.2, isolation_level=None)
                try:
                    con.execute("PRAGMA journal_mode=%s" % mode)
                    rows = con.execute(statement).fetchall()
                    out = {"ok": True, "rows": rows}
                finally:
                    con.close()
            else:
                out = {"error": "unknown command %s" % cmd}
        except OSError as e:
            out = {"errno": errno.errorcode.get(e.errno, str(e.errno))}
        except sqlite3.Error as e:
            out = {"error": str(e)}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
