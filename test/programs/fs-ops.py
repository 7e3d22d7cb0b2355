"""Differential file-system workload: a seeded random sequence of operations.

usage: fs-ops.py DIR SEED COUNT

Runs COUNT operations chosen by random.Random(SEED) on a few files in a
couple of directories under DIR (create/open with various flags, pwrite and
write at offsets, pread, ftruncate/truncate, rename, unlink, fsync,
fdatasync, close and reopen, stat and fstat, chmod, mkdir/rmdir, listdir,
link, symlink, readlink), and prints one
line per operation with its result: return value, errno name, or length and
hash of the bytes read. It ends with a listing of the tree (type, size,
hash of every file). Two runs with the same seed on file systems that behave
alike print identical text. Nothing here depends on inode numbers, times or
the directory order the file system returns.
"""
import errno
import hashlib
import os
import random
import stat
import sys

MAX_OFFSET = 300 * 1024
MAX_FDS = 8
DIRS = ["", "d0", "d1", "d0/sub"]
FILE_NAMES = ["a", "b", "c"]
# Operation names and relative weights.
BASE_OPS = [
    ("open", 10), ("close", 6), ("pwrite", 18), ("write", 6), ("pread", 14), ("read", 5), ("lseek", 3),
    ("ftruncate", 5), ("truncate", 3), ("rename", 5), ("unlink", 4), ("fsync", 3), ("fdatasync", 2),
    ("stat", 6), ("fstat", 4), ("mkdir", 2), ("rmdir", 2), ("listdir", 3), ("fsyncdir", 1), ("chmod", 1),
]
# Hard links and symlinks: one inode under several names. FSOPS_LINKS=0 leaves them out.
LINK_OPS = [("link", 2), ("symlink", 1), ("readlink", 1)]
_ops = BASE_OPS + ([] if os.environ.get("FSOPS_LINKS") == "0" else LINK_OPS)
OPS = [name for name, _ in _ops]
WEIGHTS = [w for _, w in _ops]
# For diagnosis only: FSOPS_WITHOUT=fstat,rename turns those operations into no-ops.
WITHOUT = set(filter(None, os.environ.get("FSOPS_WITHOUT", "").split(",")))


def h(data):
    return "%d:%s" % (len(data), hashlib.sha1(data).hexdigest()[:12])


def err_name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


class Run:
    def __init__(self, root, seed):
        self.root = root
        self.rnd = random.Random(seed)
        self.fds = {}  # slot -> (fd, is a directory)
        self.paths = [os.path.join(d, n) for d in DIRS for n in FILE_NAMES]

    def path(self):
        r = self.rnd.random()
        if r < 0.9:
            return self.rnd.choice(self.paths)
        return self.rnd.choice(DIRS[1:])

    def abs(self, p):
        return os.path.join(self.root, p)

    def data(self):
        r = self.rnd.random()
        if r < 0.6:
            n = self.rnd.randint(1, 4096)
        elif r < 0.95:
            n = self.rnd.randint(4097, 70000)
        else:
            # Larger than FUSE's usual 128 KiB max_write: split by the kernel.
            n = self.rnd.randint(131000, 200000)
        b = self.rnd.randrange(256)
        # Position-dependent content, so bytes landing at the wrong offset show.
        pattern = bytes((b + i * 7) & 0xFF for i in range(512))
        return (pattern * (n // 512 + 1))[:n]

    def offset(self):
        r = self.rnd.random()
        if r < 0.5:
            return self.rnd.randrange(0, 8192)
        return self.rnd.randrange(0, MAX_OFFSET)

    def fd_slot(self):
        if not self.fds:
            return None
        return self.rnd.choice(sorted(self.fds))

    def op(self):
        rnd = self.rnd
        kind = rnd.choices(OPS, weights=WEIGHTS)[0]
        if kind in WITHOUT:
            return "skip " + kind, "-"
        return getattr(self, "op_" + kind)()

    def op_open(self):
        rnd = self.rnd
        p = self.path()
        acc = rnd.choice([os.O_RDONLY, os.O_WRONLY, os.O_RDWR, os.O_RDWR])
        flags = acc
        if rnd.random() < 0.6:
            flags |= os.O_CREAT
            if rnd.random() < 0.15:
                flags |= os.O_EXCL
        if rnd.random() < 0.1 and acc != os.O_RDONLY:
            flags |= os.O_TRUNC
        if rnd.random() < 0.15:
            flags |= os.O_APPEND
        desc = "open %s flags=%o" % (p, flags)
        if len(self.fds) >= MAX_FDS:
            slot = self.fd_slot()
            os.close(self.fds.pop(slot)[0])
            desc += " (closed #%d first)" % slot
        try:
            fd = os.open(self.abs(p), flags, 0o644)
        except OSError as e:
            return desc, err_name(e)
        slot = next(i for i in range(MAX_FDS + 1) if i not in self.fds)
        self.fds[slot] = (fd, stat.S_ISDIR(os.fstat(fd).st_mode))
        return desc, "#%d" % slot

    def is_dir(self, fd):
        return any(e[1] for e in self.fds.values() if e[0] == fd)

    def with_fd(self, name, fn):
        slot = self.fd_slot()
        if slot is None:
            return name + " (no fd)", "-"
        fd = self.fds[slot][0]
        desc, res = fn(fd)
        return "%s #%d %s" % (name, slot, desc), res

    def op_close(self):
        slot = self.fd_slot()
        if slot is None:
            return "close (no fd)", "-"
        fd = self.fds.pop(slot)[0]
        try:
            os.close(fd)
            return "close #%d" % slot, "ok"
        except OSError as e:
            return "close #%d" % slot, err_name(e)

    def op_pwrite(self):
        data, off = self.data(), self.offset()

        def f(fd):
            try:
                return "%s@%d" % (h(data), off), str(os.pwrite(fd, data, off))
            except OSError as e:
                return "%s@%d" % (h(data), off), err_name(e)

        return self.with_fd("pwrite", f)

    def op_write(self):
        data = self.data()

        def f(fd):
            try:
                n = os.write(fd, data)
                return h(data), "%d pos=%d" % (n, os.lseek(fd, 0, os.SEEK_CUR))
            except OSError as e:
                return h(data), err_name(e)

        return self.with_fd("write", f)

    def op_pread(self):
        n, off = self.rnd.choice([1, 100, 4096, 65536, 200000]), self.offset()

        def f(fd):
            try:
                return "%d@%d" % (n, off), h(os.pread(fd, n, off))
            except OSError as e:
                return "%d@%d" % (n, off), err_name(e)

        return self.with_fd("pread", f)

    def op_read(self):
        n = self.rnd.choice([10, 4096, 100000])

        def f(fd):
            try:
                return str(n), h(os.read(fd, n))
            except OSError as e:
                return str(n), err_name(e)

        return self.with_fd("read", f)

    def op_lseek(self):
        whence = self.rnd.choice([os.SEEK_SET, os.SEEK_CUR, os.SEEK_END])
        off = self.offset() if whence == os.SEEK_SET else self.rnd.randrange(0, 1000)

        def f(fd):
            if self.is_dir(fd):
                # Directory offsets are the file system's own cookies (ext4
                # refuses SEEK_END, FUSE allows it): not comparable.
                return "%d,%d" % (off, whence), "skipped on a directory"
            try:
                return "%d,%d" % (off, whence), str(os.lseek(fd, off, whence))
            except OSError as e:
                return "%d,%d" % (off, whence), err_name(e)

        return self.with_fd("lseek", f)

    def op_ftruncate(self):
        size = self.rnd.choice([0, 1, 4095, 4096, 4097, self.offset()])

        def f(fd):
            try:
                os.ftruncate(fd, size)
                return str(size), "ok"
            except OSError as e:
                return str(size), err_name(e)

        return self.with_fd("ftruncate", f)

    def op_truncate(self):
        p, size = self.path(), self.rnd.choice([0, 100, self.offset()])
        try:
            os.truncate(self.abs(p), size)
            return "truncate %s %d" % (p, size), "ok"
        except OSError as e:
            return "truncate %s %d" % (p, size), err_name(e)

    def op_rename(self):
        a, b = self.path(), self.path()
        try:
            os.rename(self.abs(a), self.abs(b))
            return "rename %s %s" % (a, b), "ok"
        except OSError as e:
            return "rename %s %s" % (a, b), err_name(e)

    def op_unlink(self):
        p = self.path()
        try:
            os.unlink(self.abs(p))
            return "unlink %s" % p, "ok"
        except OSError as e:
            return "unlink %s" % p, err_name(e)

    def op_fsync(self):
        def f(fd):
            try:
                os.fsync(fd)
                return "", "ok"
            except OSError as e:
                return "", err_name(e)

        return self.with_fd("fsync", f)

    def op_fdatasync(self):
        def f(fd):
            try:
                os.fdatasync(fd)
                return "", "ok"
            except OSError as e:
                return "", err_name(e)

        return self.with_fd("fdatasync", f)

    def op_fsyncdir(self):
        d = self.rnd.choice(DIRS)
        try:
            fd = os.open(self.abs(d), os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            return "fsyncdir %s" % d, err_name(e)
        try:
            os.fsync(fd)
            return "fsyncdir %s" % d, "ok"
        except OSError as e:
            return "fsyncdir %s" % d, err_name(e)
        finally:
            os.close(fd)

    def op_stat(self):
        p = self.path()
        try:
            return "stat %s" % p, describe_stat(os.stat(self.abs(p)))
        except OSError as e:
            return "stat %s" % p, err_name(e)

    def op_fstat(self):
        def f(fd):
            try:
                return "", describe_stat(os.fstat(fd))
            except OSError as e:
                return "", err_name(e)

        return self.with_fd("fstat", f)

    def op_link(self):
        a, b = self.path(), self.path()
        try:
            os.link(self.abs(a), self.abs(b))
            return "link %s %s" % (a, b), "ok"
        except OSError as e:
            return "link %s %s" % (a, b), err_name(e)

    def op_symlink(self):
        a, b = self.path(), self.path()
        try:
            os.symlink(a, self.abs(b))
            return "symlink %s %s" % (a, b), "ok"
        except OSError as e:
            return "symlink %s %s" % (a, b), err_name(e)

    def op_readlink(self):
        p = self.path()
        try:
            return "readlink %s" % p, os.readlink(self.abs(p))
        except OSError as e:
            return "readlink %s" % p, err_name(e)

    def op_chmod(self):
        p, mode = self.path(), self.rnd.choice([0o600, 0o644, 0o755, 0o400])
        try:
            os.chmod(self.abs(p), mode)
            return "chmod %s %o" % (p, mode), "ok"
        except OSError as e:
            return "chmod %s %o" % (p, mode), err_name(e)

    def op_mkdir(self):
        d = self.rnd.choice(DIRS[1:])
        try:
            os.mkdir(self.abs(d), 0o755)
            return "mkdir %s" % d, "ok"
        except OSError as e:
            return "mkdir %s" % d, err_name(e)

    def op_rmdir(self):
        d = self.rnd.choice(DIRS[1:])
        try:
            os.rmdir(self.abs(d))
            return "rmdir %s" % d, "ok"
        except OSError as e:
            return "rmdir %s" % d, err_name(e)

    def op_listdir(self):
        d = self.rnd.choice(DIRS)
        try:
            return "listdir %s" % d, ",".join(sorted(os.listdir(self.abs(d))))
        except OSError as e:
            return "listdir %s" % d, err_name(e)

    def tree(self):
        lines = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            rel = os.path.relpath(dirpath, self.root)
            lines.append("dir %s %s" % (rel, oct(stat.S_IMODE(os.stat(dirpath).st_mode))))
            for n in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
                full = os.path.join(dirpath, n)
                st = os.lstat(full)
                if stat.S_ISLNK(st.st_mode):
                    lines.append("symlink %s -> %s" % (os.path.join(rel, n), os.readlink(full)))
                    continue
                with open(full, "rb") as f:
                    lines.append(
                        "file %s %s mode=%o nlink=%d"
                        % (os.path.join(rel, n), h(f.read()), stat.S_IMODE(st.st_mode), st.st_nlink)
                    )
        return lines


def describe_stat(st):
    kind = "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
    size = st.st_size if kind == "file" else "-"
    return "%s mode=%o size=%s" % (kind, stat.S_IMODE(st.st_mode), size)


def main():
    root, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    run = Run(root, seed)
    for d in DIRS[1:]:
        os.makedirs(run.abs(d), exist_ok=True)
    out = []
    for i in range(count):
        desc, res = run.op()
        out.append("%d %s -> %s" % (i, desc, res))
    for entry in run.fds.values():
        os.close(entry[0])
    out.extend(run.tree())
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
