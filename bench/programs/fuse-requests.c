/*
 * Tight client loop for the FUSE per-request benchmark (bench/fuse.ts).
 *
 *   fuse-requests OP FILE DURATION_MS
 *
 * OP is one of:
 *   fstat  fstat() on an open descriptor (one GETATTR when attr timeout is 0)
 *   lock   fcntl(F_SETLK) write lock on one byte, then unlock (two SETLK)
 *   stat   stat() of the path (LOOKUP + GETATTR when both timeouts are 0)
 *
 * Runs a short warm-up, then repeats OP until DURATION_MS have elapsed and
 * prints one JSON line: {"op":"fstat","ops":N,"ns":T}. The loop is native so
 * the client's own cost per operation stays well under a microsecond and the
 * figure is dominated by the file system under test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Read the clock only every CHECK_EVERY operations so the loop stays tight. */
#define CHECK_EVERY 64
#define WARMUP_OPS 200
/* The byte SQLite-like clients lock; any offset works, one byte is enough. */
#define LOCK_OFFSET 1073741824L

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "fuse-requests: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void set_lock(int fd, short type) {
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = LOCK_OFFSET;
  fl.l_len = 1;
  if (fcntl(fd, F_SETLK, &fl) != 0) die("fcntl(F_SETLK)");
}

static void run_once(const char *op, int fd, const char *path) {
  struct stat st;
  if (op[0] == 'f') {
    if (fstat(fd, &st) != 0) die("fstat");
  } else if (op[0] == 'l') {
    set_lock(fd, F_WRLCK);
    set_lock(fd, F_UNLCK);
  } else {
    if (stat(path, &st) != 0) die("stat");
  }
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: fuse-requests fstat|lock|stat FILE DURATION_MS\n");
    return 2;
  }
  const char *op = argv[1];
  const char *path = argv[2];
  long duration_ms = strtol(argv[3], NULL, 10);
  if (strcmp(op, "fstat") != 0 && strcmp(op, "lock") != 0 && strcmp(op, "stat") != 0) {
    fprintf(stderr, "fuse-requests: unknown op %s\n", op);
    return 2;
  }
  if (duration_ms <= 0) {
    fprintf(stderr, "fuse-requests: bad duration %s\n", argv[3]);
    return 2;
  }
  int fd = open(path, O_RDWR);
  if (fd < 0) die("open");

  for (int i = 0; i < WARMUP_OPS; i++) run_once(op, fd, path);

  uint64_t start = now_ns();
  uint64_t deadline = start + (uint64_t)duration_ms * 1000000ull;
  uint64_t ops = 0;
  uint64_t end;
  for (;;) {
    for (int i = 0; i < CHECK_EVERY; i++) run_once(op, fd, path);
    ops += CHECK_EVERY;
    end = now_ns();
    if (end >= deadline) break;
  }
  printf("{\"op\":\"%s\",\"ops\":%llu,\"ns\":%llu}\n", op, (unsigned long long)ops,
         (unsigned long long)(end - start));
  close(fd);
  return 0;
}
