#!/usr/bin/env python3
"""Reads a replica's database in a loop until STOP exists; prints a JSON summary.

Usage: replica-reader.py DB STOP READY

Rows are only ever added on the primary, so the row count must never go
down. 'database is locked' (SQLITE_BUSY after the busy timeout) is counted,
not an error; anything else is recorded. Every 10th read uses a fresh
connection, every 20th also runs PRAGMA quick_check. READY is created after
the first successful read.
"""
import json
import os
import sqlite3
import sys

path, stop, ready = sys.argv[1], sys.argv[2], sys.argv[3]
reads = busy = checks = 0
errors = []
last = -1
decreases = []
con = None
i = 0
while not os.path.exists(stop):
    i += 1
    try:
        if con is None or i % 10 == 0:
            if con is not None:
                con.close()
            con = sqlite3.connect(path, timeout=10)
        count, total = con.execute("SELECT count(*), coalesce(sum(length(y)), 0) FROM t").fetchone()
        if count < last:
            decreases.append([last, count])
        last = count
        reads += 1
        if reads == 1:
            open(ready, "w").close()
        if i % 20 == 0:
            result = con.execute("PRAGMA quick_check").fetchone()[0]
            checks += 1
            if result != "ok":
                errors.append("quick_check: " + result)
    except sqlite3.OperationalError as e:
        if "locked" in str(e) or "busy" in str(e):
            busy += 1
        else:
            errors.append(str(e))
        if con is not None:
            con.close()
            con = None
    except Exception as e:  # noqa: BLE001 - every other failure is a finding
        errors.append("read %d: %r" % (reads, e))
        if con is not None:
            con.close()
        con = None
    if len(errors) > 20:
        break
if con is not None:
    con.close()
print(json.dumps({"reads": reads, "busy": busy, "checks": checks, "errors": errors, "last": last, "decreases": decreases}))
