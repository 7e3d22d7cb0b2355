#!/usr/bin/env bash
# `npm run demo`: a first run of litefs-ts on one machine. Mounts a
# LiteFS primary with the shipped demo config (etc/litefs-demo.yml: data
# in demo/data, mount at demo/mnt, static lease) and a replica that follows
# it (etc/litefs-demo-replica.yml: demo/replica-mnt), writes a demo database
# through the primary's mount with the sqlite3 CLI, reads it on the replica,
# writes one row on the replica under the HALT lock (`litefs run
# -with-halt-lock-on`), shows the LTX files each commit produced, restores the database from the
# backup folder the primary uploads to (demo/backup), and unmounts both. Needs root
# (FUSE) and sqlite3. Running it again continues the same database: its
# position survives restarts.
set -euo pipefail
cd "$(dirname "$0")/.."
litefs() { node dist/src/cli/main.js "$@"; }

echo "== $(litefs version)"
if [ "$(id -u)" != 0 ] || [ ! -e /dev/fuse ] || ! command -v sqlite3 >/dev/null; then
  echo "the demo mounts a FUSE file system: it needs root, /dev/fuse and the sqlite3 CLI" >&2
  exit 1
fi

mkdir -p demo
echo "== litefs mount -config etc/litefs-demo.yml"
# Not through the litefs() function: $! must be node's own PID, so that the SIGTERM in cleanup reaches it.
node dist/src/cli/main.js mount -config etc/litefs-demo.yml > demo/mount.log 2>&1 &
daemon=$!
replica=""
cleanup() {
  for pid in $replica $daemon; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for m in mnt replica-mnt; do
    if grep -q " $(pwd)/demo/$m " /proc/self/mountinfo; then umount -l "demo/$m" || true; fi
  done
}
trap cleanup EXIT
for _ in $(seq 200); do
  grep -q "^mounted" demo/mount.log 2>/dev/null && break
  kill -0 "$daemon" 2>/dev/null || break
  sleep 0.1
done
grep -q "^mounted" demo/mount.log || { echo "litefs mount did not start:" >&2; cat demo/mount.log >&2; exit 1; }
echo "mounted at demo/mnt (data in demo/data)"

echo
echo "== sqlite3 demo/mnt/demo.db (each statement is one transaction, one LTX file)"
sqlite3 demo/mnt/demo.db <<'SQL'
CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY, at TEXT NOT NULL);
INSERT INTO visits (at) VALUES (datetime('now'));
INSERT INTO visits (at) VALUES (datetime('now'));
SELECT 'rows: ' || count(*) FROM visits;
PRAGMA integrity_check;
SQL

echo
echo "== the mount (ls -l demo/mnt)"
ls -l demo/mnt
echo "position (TXID/checksum): $(cat demo/mnt/demo.db-pos)"
echo
echo "== LTX files (demo/data/dbs/demo.db/ltx)"
ls demo/data/dbs/demo.db/ltx | tail -5
last=$(ls demo/data/dbs/demo.db/ltx/*.ltx | tail -1)
echo
echo "== litefs ltx verify && litefs ltx dump $last"
litefs ltx verify "$last" && litefs ltx dump "$last"

echo
echo "== a replica: litefs mount -config etc/litefs-demo-replica.yml (follows http://localhost:20202)"
node dist/src/cli/main.js mount -config etc/litefs-demo-replica.yml > demo/replica.log 2>&1 &
replica=$!
for _ in $(seq 300); do
  [ "$(cat demo/replica-mnt/demo.db-pos 2>/dev/null)" = "$(cat demo/mnt/demo.db-pos)" ] && break
  kill -0 "$replica" 2>/dev/null || break
  sleep 0.1
done
[ "$(cat demo/replica-mnt/demo.db-pos 2>/dev/null)" = "$(cat demo/mnt/demo.db-pos)" ] || { echo "the replica did not catch up:" >&2; cat demo/replica.log >&2; exit 1; }
echo "replica position: $(cat demo/replica-mnt/demo.db-pos) (same as the primary's); its primary: $(cat demo/replica-mnt/.primary)"
sqlite3 demo/replica-mnt/demo.db "SELECT 'rows on the replica: ' || count(*) FROM visits;"
echo "a write on the replica is refused:"
sqlite3 demo/replica-mnt/demo.db "INSERT INTO visits (at) VALUES ('x');" 2>&1 || true
echo "under the HALT lock it is allowed, and reaches the primary before it commits on the replica:"
echo "  litefs run -url http://127.0.0.1:20203 -with-halt-lock-on demo/replica-mnt/demo.db -- sqlite3 ..."
litefs run -url http://127.0.0.1:20203 -with-halt-lock-on demo/replica-mnt/demo.db -- \
  sqlite3 demo/replica-mnt/demo.db "INSERT INTO visits (at) VALUES ('written on the replica');"
sqlite3 demo/mnt/demo.db "SELECT 'rows on the primary: ' || count(*) FROM visits;"

echo
echo "== the backup (etc/litefs-demo.yml backup: demo/backup): litefs restore"
rm -f demo/restored.db
want=$(cut -c1-16 demo/mnt/demo.db-pos)
for _ in $(seq 100); do
  ls demo/backup/demo.db/*-"$want".ltx >/dev/null 2>&1 && break
  sleep 0.1
done
litefs restore -path demo/backup -db demo.db -o demo/restored.db
sqlite3 demo/restored.db "SELECT 'rows in the restored copy: ' || count(*) FROM visits;"

cleanup
trap - EXIT
echo
echo "unmounted. Try next:"
echo "  node dist/src/cli/main.js mount -config etc/litefs-demo-replica.yml &  # a replica (with the primary running)"
echo "  node dist/src/cli/main.js mount -config etc/litefs-demo.yml &    # mount it again"
echo "  sqlite3 demo/mnt/demo.db 'SELECT * FROM visits'                  # read through the mount"
echo "  ls demo/data/dbs/demo.db/ltx; node dist/src/cli/main.js ltx dump <file>"
echo "  node dist/src/cli/main.js restore -path demo/backup -db demo.db -txid <TXID> -o /tmp/old.db  # a past state"
echo "  kill %1                                                          # SIGTERM unmounts"
