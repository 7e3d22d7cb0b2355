#!/usr/bin/env bash
# `npm run demo`: the main job for now (issue 2/3 stage). Prints the version,
# inspects an LTX file with the ltx tools, then mounts a FUSE passthrough of
# demo/data at demo/mnt, creates a demo database through the mount with the
# sqlite3 CLI, reads it back and unmounts. Needs root (FUSE) and sqlite3.
set -euo pipefail
cd "$(dirname "$0")/.."
litefs() { node dist/src/cli/main.js "$@"; }

echo "== litefs version"
litefs version

fixture=test/fixtures/ltx/litefs-v0.5.11/testdata/store/open-and-write-snapshot/dbs/sqlite.db/ltx/000000000000000d-000000000000000d.ltx
echo
echo "== litefs ltx dump (an LTX file written by Go LiteFS v0.5.11)"
litefs ltx dump "$fixture"
echo
echo "== litefs ltx verify"
litefs ltx verify "$fixture" && echo "valid"
corrupt=$(mktemp)
cp "$fixture" "$corrupt"
printf '\xff' | dd of="$corrupt" bs=1 seek=200 conv=notrunc status=none
echo "== litefs ltx verify (one byte flipped)"
litefs ltx verify "$corrupt" || echo "(exit $?)"
rm -f "$corrupt"

if [ "$(id -u)" != 0 ] || [ ! -e /dev/fuse ] || ! command -v sqlite3 >/dev/null; then
  echo
  echo "skipping the mount demo: it needs root, /dev/fuse and the sqlite3 CLI"
  exit 0
fi

mkdir -p demo/data demo/mnt
echo
echo "== litefs passthrough demo/data demo/mnt"
node dist/src/cli/main.js passthrough demo/data demo/mnt > demo/passthrough.log 2>&1 &
daemon=$!
cleanup() {
  kill -TERM "$daemon" 2>/dev/null || true
  wait "$daemon" 2>/dev/null || true
  if grep -q " $(pwd)/demo/mnt " /proc/self/mountinfo; then umount -l demo/mnt || true; fi
}
trap cleanup EXIT
for _ in $(seq 100); do
  grep -q "^mounted" demo/passthrough.log 2>/dev/null && break
  sleep 0.1
done
grep -q "^mounted" demo/passthrough.log || { cat demo/passthrough.log; exit 1; }

sqlite3 demo/mnt/demo.db <<'SQL'
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY, at TEXT NOT NULL);
INSERT INTO visits (at) VALUES (datetime('now'));
SQL
echo "rows in demo/mnt/demo.db (through the mount):"
sqlite3 demo/mnt/demo.db "SELECT count(*) FROM visits; PRAGMA integrity_check;"
echo "the same bytes in the source folder:"
ls -l demo/data
cleanup
trap - EXIT
echo
echo "Try next:"
echo "  node dist/src/cli/main.js passthrough demo/data demo/mnt &   # mount it yourself"
echo "  sqlite3 demo/mnt/demo.db 'SELECT * FROM visits'"
echo "  node dist/src/cli/main.js ltx dump $fixture"
