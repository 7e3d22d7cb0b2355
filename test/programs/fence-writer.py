#!/usr/bin/env python3
"""Holds a write transaction open across a fence or step-down; prints a JSON summary.

Usage: fence-writer.py DB READY GO ROWS CACHE_PAGES

Opens DB, sets cache_size=CACHE_PAGES (a small cache makes SQLite spill:
database pages written under a synced journal, or WAL frames without a
commit frame, before COMMIT), BEGIN IMMEDIATE, inserts ROWS rows, creates
READY, waits for GO, then COMMITs. Prints {"commit": "ok"} or
{"commit": "error", "message": ...}; then rolls back whatever is left and
closes. Exit status 0 unless something before COMMIT failed.
"""
import json
import os
import sqlite3
import sys
import time

path, ready, go, rows, cache = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
con = sqlite3.connect(path, timeout=10, isolation_level=None)
con.execute(f"PRAGMA cache_size={cache}")
con.execute("BEGIN IMMEDIATE")
for i in range(rows):
    con.execute("INSERT INTO t(v) VALUES (randomblob(600))")
open(ready, "w").close()
deadline = time.time() + 120
while not os.path.exists(go):
    if time.time() > deadline:
        sys.exit("GO never came")
    time.sleep(0.02)
result = {}
try:
    con.execute("COMMIT")
    result = {"commit": "ok"}
except sqlite3.Error as e:
    result = {"commit": "error", "message": str(e)}
try:
    con.execute("ROLLBACK")
except sqlite3.Error as e:
    result["rollback"] = str(e)
con.close()
print(json.dumps(result))
