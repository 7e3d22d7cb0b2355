/*
 * SQLite client for the FUSE benchmark (bench/fuse.ts). One scenario per
 * process, so each starts with an empty SQLite page cache.
 *
 *   sqlite-workload commits  DB JOURNAL SYNC DURATION_MS
 *       fresh database; single-row INSERT transactions until the time is up
 *   sqlite-workload bulk     DB JOURNAL SYNC ROWS
 *       fresh database; ROWS inserts in one transaction (timed with COMMIT)
 *   sqlite-workload populate DB JOURNAL ROWS
 *       fresh database with ROWS rows for the select scenarios (not timed)
 *   sqlite-workload select-warm DB ROWS DURATION_MS
 *       one connection, page cache filled by a scan, then point selects
 *   sqlite-workload select-cold DB ROWS DURATION_MS
 *       every point select on a brand-new connection (open, select, close)
 *   sqlite-workload mixed    DB ROWS READERS DURATION_MS
 *       READERS forked reader processes doing warm point selects and one
 *       writer doing single-row commits, all at once, for the duration
 *   sqlite-workload version
 *       the linked SQLite library's version
 *
 * JOURNAL is delete or wal, SYNC is full or normal. Prints one JSON line:
 * {"ops":N,"ns":T} (mixed: {"reads":R,"writes":W,"ns":T}).
 * Each row is (id INTEGER PRIMARY KEY, v BLOB of PAYLOAD bytes).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD 100
#define CHECK_EVERY 16
#define BUSY_TIMEOUT_MS 10000
/* Large enough that the whole test table stays in a warm connection's cache. */
#define WARM_CACHE_KIB 65536
#define MAX_READERS 64

static uint8_t payload[PAYLOAD];
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next_random(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fail(sqlite3 *db, const char *what) {
  fprintf(stderr, "sqlite-workload: %s: %s\n", what, db ? sqlite3_errmsg(db) : "out of memory");
  exit(1);
}

static void check(sqlite3 *db, int rc, const char *what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) fail(db, what);
}

static void exec(sqlite3 *db, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "sqlite-workload: %s: %s\n", sql, err ? err : "?");
    exit(1);
  }
}

static sqlite3 *open_db(const char *path) {
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  if (rc != SQLITE_OK) fail(db, "open");
  sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
  return db;
}

static void remove_db_files(const char *path) {
  const char *suffixes[] = {"", "-journal", "-wal", "-shm"};
  char name[4096];
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    snprintf(name, sizeof name, "%s%s", path, suffixes[i]);
    if (unlink(name) != 0 && errno != ENOENT) {
      fprintf(stderr, "sqlite-workload: unlink %s: %s\n", name, strerror(errno));
      exit(1);
    }
  }
}

static void set_modes(sqlite3 *db, const char *journal, const char *sync) {
  char sql[128];
  snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", journal);
  exec(db, sql);
  if (sync) {
    snprintf(sql, sizeof sql, "PRAGMA synchronous=%s", sync);
    exec(db, sql);
  }
}

static sqlite3 *fresh_db(const char *path, const char *journal, const char *sync) {
  remove_db_files(path);
  sqlite3 *db = open_db(path);
  set_modes(db, journal, sync);
  exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB NOT NULL)");
  return db;
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = NULL;
  check(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
  return st;
}

static void insert_row(sqlite3 *db, sqlite3_stmt *ins) {
  sqlite3_bind_blob(ins, 1, payload, PAYLOAD, SQLITE_STATIC);
  if (sqlite3_step(ins) != SQLITE_DONE) fail(db, "insert");
  sqlite3_reset(ins);
}

static void select_row(sqlite3 *db, sqlite3_stmt *sel, long rows) {
  sqlite3_bind_int64(sel, 1, (sqlite3_int64)(next_random() % (uint64_t)rows) + 1);
  if (sqlite3_step(sel) != SQLITE_ROW) fail(db, "select (row missing?)");
  sqlite3_reset(sel);
}

static void print_ops(uint64_t ops, uint64_t ns) {
  printf("{\"ops\":%llu,\"ns\":%llu}\n", (unsigned long long)ops, (unsigned long long)ns);
}

static int commits(const char *path, const char *journal, const char *sync, long ms) {
  sqlite3 *db = fresh_db(path, journal, sync);
  sqlite3_stmt *ins = prepare(db, "INSERT INTO t(v) VALUES(?)");
  for (int i = 0; i < 10; i++) insert_row(db, ins);
  uint64_t start = now_ns(), deadline = start + (uint64_t)ms * 1000000ull, ops = 0, end;
  for (;;) {
    for (int i = 0; i < CHECK_EVERY; i++) insert_row(db, ins);
    ops += CHECK_EVERY;
    end = now_ns();
    if (end >= deadline) break;
  }
  print_ops(ops, end - start);
  sqlite3_finalize(ins);
  sqlite3_close(db);
  return 0;
}

static int bulk(const char *path, const char *journal, const char *sync, long rows, int timed) {
  sqlite3 *db = fresh_db(path, journal, sync);
  sqlite3_stmt *ins = prepare(db, "INSERT INTO t(v) VALUES(?)");
  uint64_t start = now_ns();
  exec(db, "BEGIN");
  for (long i = 0; i < rows; i++) insert_row(db, ins);
  exec(db, "COMMIT");
  uint64_t end = now_ns();
  if (timed) print_ops((uint64_t)rows, end - start);
  else printf("{\"rows\":%ld}\n", rows);
  sqlite3_finalize(ins);
  sqlite3_close(db);
  return 0;
}

static void fill_cache(sqlite3 *db) {
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA cache_size=-%d", WARM_CACHE_KIB);
  exec(db, sql);
  exec(db, "SELECT count(*), sum(length(v)) FROM t");
}

static int select_warm(const char *path, long rows, long ms) {
  sqlite3 *db = open_db(path);
  fill_cache(db);
  sqlite3_stmt *sel = prepare(db, "SELECT v FROM t WHERE id = ?");
  for (int i = 0; i < 100; i++) select_row(db, sel, rows);
  uint64_t start = now_ns(), deadline = start + (uint64_t)ms * 1000000ull, ops = 0, end;
  for (;;) {
    for (int i = 0; i < CHECK_EVERY; i++) select_row(db, sel, rows);
    ops += CHECK_EVERY;
    end = now_ns();
    if (end >= deadline) break;
  }
  print_ops(ops, end - start);
  sqlite3_finalize(sel);
  sqlite3_close(db);
  return 0;
}

static int select_cold(const char *path, long rows, long ms) {
  /* A second connection stays open so that closing the measured one is not
   * the last close, which in WAL mode would checkpoint and delete the WAL. */
  sqlite3 *holder = open_db(path);
  exec(holder, "SELECT count(*) FROM t");
  uint64_t start = now_ns(), deadline = start + (uint64_t)ms * 1000000ull, ops = 0, end;
  for (;;) {
    sqlite3 *db = open_db(path);
    sqlite3_stmt *sel = prepare(db, "SELECT v FROM t WHERE id = ?");
    select_row(db, sel, rows);
    sqlite3_finalize(sel);
    sqlite3_close(db);
    ops++;
    end = now_ns();
    if (end >= deadline) break;
  }
  print_ops(ops, end - start);
  sqlite3_close(holder);
  return 0;
}

struct shared_state {
  volatile int go;
  volatile int stop;
  volatile uint64_t reads[MAX_READERS];
  volatile uint64_t writes;
};

static void mixed_reader(struct shared_state *s, int index, const char *path, long rows) {
  rng ^= (uint64_t)(index + 1) * 0x2545F4914F6CDD1Dull;
  sqlite3 *db = open_db(path);
  fill_cache(db);
  sqlite3_stmt *sel = prepare(db, "SELECT v FROM t WHERE id = ?");
  while (!s->go) usleep(1000);
  uint64_t n = 0;
  while (!s->stop) {
    select_row(db, sel, rows);
    s->reads[index] = ++n;
  }
  sqlite3_finalize(sel);
  sqlite3_close(db);
}

static void mixed_writer(struct shared_state *s, const char *path) {
  sqlite3 *db = open_db(path);
  exec(db, "PRAGMA synchronous=NORMAL");
  sqlite3_stmt *ins = prepare(db, "INSERT INTO t(v) VALUES(?)");
  while (!s->go) usleep(1000);
  uint64_t n = 0;
  while (!s->stop) {
    insert_row(db, ins);
    s->writes = ++n;
  }
  sqlite3_finalize(ins);
  sqlite3_close(db);
}

static int mixed(const char *path, long rows, long readers, long ms) {
  if (readers < 1 || readers > MAX_READERS) {
    fprintf(stderr, "sqlite-workload: readers must be 1..%d\n", MAX_READERS);
    return 2;
  }
  struct shared_state *s =
      mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (s == MAP_FAILED) {
    perror("sqlite-workload: mmap");
    return 1;
  }
  memset((void *)s, 0, sizeof *s);
  pid_t pids[MAX_READERS + 1];
  for (long i = 0; i <= readers; i++) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("sqlite-workload: fork");
      s->stop = 1;
      return 1;
    }
    if (pid == 0) {
      if (i == readers) mixed_writer(s, path);
      else mixed_reader(s, (int)i, path, rows);
      _exit(0);
    }
    pids[i] = pid;
  }
  /* Let every child open its connection and fill its cache before timing. */
  usleep(300000);
  uint64_t start = now_ns();
  s->go = 1;
  usleep((useconds_t)ms * 1000);
  uint64_t reads = 0;
  for (long i = 0; i < readers; i++) reads += s->reads[i];
  uint64_t writes = s->writes;
  uint64_t end = now_ns();
  s->stop = 1;
  int failed = 0;
  for (long i = 0; i <= readers; i++) {
    int status = 0;
    if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
  }
  if (failed) {
    fprintf(stderr, "sqlite-workload: a mixed-workload child failed\n");
    return 1;
  }
  printf("{\"reads\":%llu,\"writes\":%llu,\"ns\":%llu}\n", (unsigned long long)reads,
         (unsigned long long)writes, (unsigned long long)(end - start));
  return 0;
}

static long number(const char *s, const char *what) {
  char *end = NULL;
  long v = strtol(s, &end, 10);
  if (!end || *end != '\0' || v <= 0) {
    fprintf(stderr, "sqlite-workload: bad %s: %s\n", what, s);
    exit(2);
  }
  return v;
}

static const char *journal_arg(const char *s) {
  if (strcmp(s, "delete") != 0 && strcmp(s, "wal") != 0) {
    fprintf(stderr, "sqlite-workload: journal must be delete or wal, not %s\n", s);
    exit(2);
  }
  return s;
}

static const char *sync_arg(const char *s) {
  if (strcmp(s, "full") != 0 && strcmp(s, "normal") != 0) {
    fprintf(stderr, "sqlite-workload: sync must be full or normal, not %s\n", s);
    exit(2);
  }
  return s;
}

int main(int argc, char **argv) {
  for (int i = 0; i < PAYLOAD; i++) payload[i] = (uint8_t)(i * 37 + 11);
  const char *cmd = argc > 1 ? argv[1] : "";
  if (strcmp(cmd, "version") == 0 && argc == 2) {
    printf("{\"sqlite\":\"%s\"}\n", sqlite3_libversion());
    return 0;
  }
  if (strcmp(cmd, "commits") == 0 && argc == 6)
    return commits(argv[2], journal_arg(argv[3]), sync_arg(argv[4]), number(argv[5], "duration"));
  if (strcmp(cmd, "bulk") == 0 && argc == 6)
    return bulk(argv[2], journal_arg(argv[3]), sync_arg(argv[4]), number(argv[5], "rows"), 1);
  if (strcmp(cmd, "populate") == 0 && argc == 5)
    return bulk(argv[2], journal_arg(argv[3]), NULL, number(argv[4], "rows"), 0);
  if (strcmp(cmd, "select-warm") == 0 && argc == 5)
    return select_warm(argv[2], number(argv[3], "rows"), number(argv[4], "duration"));
  if (strcmp(cmd, "select-cold") == 0 && argc == 5)
    return select_cold(argv[2], number(argv[3], "rows"), number(argv[4], "duration"));
  if (strcmp(cmd, "mixed") == 0 && argc == 6)
    return mixed(argv[2], number(argv[3], "rows"), number(argv[4], "readers"), number(argv[5], "duration"));
  fprintf(stderr,
          "usage: sqlite-workload commits DB delete|wal full|normal MS\n"
          "       sqlite-workload bulk DB delete|wal full|normal ROWS\n"
          "       sqlite-workload populate DB delete|wal ROWS\n"
          "       sqlite-workload select-warm|select-cold DB ROWS MS\n"
          "       sqlite-workload mixed DB ROWS READERS MS\n"
          "       sqlite-workload version\n");
  return 2;
}
