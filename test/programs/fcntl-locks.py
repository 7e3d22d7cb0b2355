"""POSIX record locks between processes: one scripted scenario, one transcript.

usage: fcntl-locks.py DIR [deadlock]

Forks three worker processes P, Q, R, each taking commands from the
coordinator over a pipe and answering over another, and drives them through
a fixed scenario of F_SETLK / F_SETLKW / F_GETLK calls on DIR/f. Prints one
transcript line per step (pids replaced by worker names, so the transcripts
of two runs compare as text). Each step also carries the answer POSIX and
Linux give; a final line "mismatches N" counts the steps that differed, so a
run on a plain folder proves the scenario itself right.

The FUSE suite runs it on a plain folder and on the mount and compares the
transcripts. Exit status is 0 whenever the scenario ran to the end.
"""
import errno
import fcntl
import json
import os
import select
import signal
import struct
import sys
import time

# struct flock on Linux x86_64/aarch64: short l_type, short l_whence,
# off_t l_start, off_t l_len, pid_t l_pid (+4 bytes of padding).
FLOCK = "hhqqi4x"
TYPES = {"R": fcntl.F_RDLCK, "W": fcntl.F_WRLCK, "U": fcntl.F_UNLCK}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
CMDS = {"SETLK": fcntl.F_SETLK, "SETLKW": fcntl.F_SETLKW, "GETLK": fcntl.F_GETLK}
REPLY_TIMEOUT = 10.0


class Interrupted(Exception):
    pass


def on_alarm(_signum, _frame):
    # Raising from the handler makes fcntl() give up on EINTR instead of
    # retrying it (PEP 475), so the caller sees the interruption.
    raise Interrupted()


def worker(root, cmd_r, reply_w):
    fds = {}
    signal.signal(signal.SIGALRM, on_alarm)
    with os.fdopen(cmd_r, "r") as cmds, os.fdopen(reply_w, "w") as replies:
        for line in cmds:
            c = json.loads(line)
            op = c["op"]
            try:
                if op == "open":
                    fds[c["fd"]] = os.open(os.path.join(root, c["file"]), os.O_RDWR | os.O_CREAT, 0o644)
                    res = "ok"
                elif op == "close":
                    os.close(fds.pop(c["fd"]))
                    res = "ok"
                elif op == "lock":
                    arg = struct.pack(FLOCK, TYPES[c["type"]], os.SEEK_SET, c["start"], c["len"], 0)
                    if c.get("alarm_ms"):
                        signal.setitimer(signal.ITIMER_REAL, c["alarm_ms"] / 1000.0)
                    try:
                        got = fcntl.fcntl(fds[c["fd"]], CMDS[c["cmd"]], arg)
                    finally:
                        signal.setitimer(signal.ITIMER_REAL, 0)
                    if c["cmd"] == "GETLK":
                        t, _whence, start, length, pid = struct.unpack(FLOCK, got)
                        res = {"type": TYPE_NAMES.get(t, str(t)), "start": start, "len": length, "pid": pid}
                    else:
                        res = "ok"
                elif op == "exit":
                    replies.write(json.dumps("ok") + "\n")
                    replies.flush()
                    os._exit(0)
                else:
                    res = "bad op " + op
            except Interrupted:
                res = "EINTR"
            except OSError as e:
                # Linux has two names for 35; use the one fcntl(2) documents.
                res = "EDEADLK" if e.errno == errno.EDEADLK else errno.errorcode.get(e.errno, str(e.errno))
            replies.write(json.dumps(res) + "\n")
            replies.flush()


class Worker:
    def __init__(self, name, root):
        self.name = name
        cmd_r, cmd_w = os.pipe()
        reply_r, reply_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(cmd_w)
            os.close(reply_r)
            try:
                worker(root, cmd_r, reply_w)
            finally:
                os._exit(0)
        os.close(cmd_r)
        os.close(reply_w)
        self.pid = pid
        self.cmds = os.fdopen(cmd_w, "w")
        self.reply_fd = reply_r
        self.buf = b""

    def send(self, **c):
        self.cmds.write(json.dumps(c) + "\n")
        self.cmds.flush()

    def reply(self, timeout):
        """The next reply, or None if none arrives within timeout seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.reply_fd], [], [], left)[0]:
                return None
            chunk = os.read(self.reply_fd, 4096)
            if not chunk:
                return "worker died"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


class Scenario:
    def __init__(self, root):
        self.workers = {n: Worker(n, root) for n in "PQR"}
        self.names = {w.pid: n for n, w in self.workers.items()}
        self.lines = []
        self.mismatches = 0

    def show(self, res):
        if isinstance(res, dict):
            who = self.names.get(res["pid"], "pid=%d" % res["pid"])
            if res["type"] == "U":
                return "unlocked"
            return "%s %d+%d by %s" % (res["type"], res["start"], res["len"], who)
        return str(res)

    def record(self, text, res, expect):
        shown = self.show(res)
        mark = ""
        if expect is not None and shown != expect:
            self.mismatches += 1
            mark = "   <-- expected " + expect
        self.lines.append(text + " -> " + shown + mark)

    def do(self, name, expect, **c):
        w = self.workers[name]
        w.send(**c)
        self.record(self.describe(name, c), w.reply(REPLY_TIMEOUT), expect)

    def describe(self, name, c):
        if c["op"] == "lock":
            extra = " (alarm %dms)" % c["alarm_ms"] if c.get("alarm_ms") else ""
            return "%s %s %s %s %d+%d%s" % (name, c["fd"], c["cmd"], c["type"], c["start"], c["len"], extra)
        return "%s %s %s" % (name, c["op"], c.get("fd", ""))

    # Shorthands: lk(worker, fd, cmd, type, start, len, expect)
    def lk(self, name, fd, cmd, typ, start, length, expect):
        self.do(name, expect, op="lock", fd=fd, cmd=cmd, type=typ, start=start, len=length)

    def start_wait(self, name, fd, typ, start, length):
        """Sends an F_SETLKW and checks that it blocks (no answer in 300 ms)."""
        c = dict(op="lock", fd=fd, cmd="SETLKW", type=typ, start=start, len=length)
        w = self.workers[name]
        w.send(**c)
        res = w.reply(0.3)
        self.record(self.describe(name, c), "blocked" if res is None else res, "blocked")

    def check_blocked(self, name):
        res = self.workers[name].reply(0.3)
        self.record("%s ...SETLKW still waits" % name, "blocked" if res is None else res, "blocked")

    def kill(self, name):
        """SIGKILL a worker and wait (at most 5 s) until it is gone."""
        pid = self.workers[name].pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        res = "still alive after 5 s"
        while time.monotonic() < deadline:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                res = "ok"
                break
            time.sleep(0.01)
        self.record("%s killed" % name, res, "ok")

    def finish_wait(self, name, expect):
        res = self.workers[name].reply(REPLY_TIMEOUT)
        self.record("%s ...SETLKW returns" % name, "still blocked" if res is None else res, expect)


def deadlock(root):
    """Two owners each waiting for the other's byte: the second F_SETLKW fails
    with EDEADLK (Linux), or, where nobody detects it, is interrupted (EINTR)."""
    s = Scenario(root)
    lk = s.lk
    for n in "PQR":
        s.do(n, "ok", op="open", fd="a", file="f")
    lk("P", "a", "SETLK", "W", 0, 1, "ok")
    lk("Q", "a", "SETLK", "W", 1, 1, "ok")
    s.start_wait("P", "a", "W", 1, 1)
    s.do("Q", "EDEADLK", op="lock", fd="a", cmd="SETLKW", type="W", start=0, len=1, alarm_ms=1000)
    lk("Q", "a", "SETLK", "U", 1, 1, "ok")
    s.finish_wait("P", "ok")
    lk("R", "a", "GETLK", "W", 0, 0, "W 0+2 by P")
    for n in "PQR":
        s.do(n, "ok", op="exit")
        os.waitpid(s.workers[n].pid, 0)
    s.lines.append("mismatches %d" % s.mismatches)
    print("\n".join(s.lines))


def main():
    root = sys.argv[1]
    if sys.argv[2:] == ["deadlock"]:
        deadlock(root)
        return
    s = Scenario(root)
    lk = s.lk
    for n in "PQR":
        s.do(n, "ok", op="open", fd="a", file="f")

    # Write lock excludes others; GETLK names the holder.
    lk("P", "a", "SETLK", "W", 0, 100, "ok")
    lk("Q", "a", "GETLK", "W", 50, 10, "W 0+100 by P")
    lk("Q", "a", "GETLK", "R", 100, 10, "unlocked")
    lk("Q", "a", "SETLK", "R", 50, 10, "EAGAIN")
    lk("Q", "a", "SETLK", "W", 100, 1, "ok")
    lk("Q", "a", "SETLK", "U", 100, 1, "ok")

    # Unlocking the middle splits the range.
    lk("P", "a", "SETLK", "U", 40, 20, "ok")
    lk("Q", "a", "GETLK", "W", 0, 200, "W 0+40 by P")
    lk("Q", "a", "GETLK", "W", 40, 200, "W 60+40 by P")
    lk("Q", "a", "SETLK", "W", 40, 20, "ok")
    lk("R", "a", "GETLK", "R", 45, 1, "W 40+20 by Q")
    lk("Q", "a", "SETLK", "U", 0, 0, "ok")
    lk("P", "a", "SETLK", "U", 0, 0, "ok")
    lk("Q", "a", "GETLK", "W", 0, 0, "unlocked")

    # Read locks share; a writer is refused while any reader holds.
    lk("Q", "a", "SETLK", "R", 200, 100, "ok")
    lk("R", "a", "SETLK", "R", 250, 100, "ok")
    lk("P", "a", "GETLK", "R", 200, 200, "unlocked")
    lk("P", "a", "SETLK", "W", 299, 1, "EAGAIN")
    lk("Q", "a", "SETLK", "W", 200, 10, "ok")
    lk("Q", "a", "SETLK", "W", 250, 1, "EAGAIN")
    lk("R", "a", "SETLK", "U", 0, 0, "ok")

    # Adjacent ranges of one owner merge; type changes split and re-merge.
    lk("Q", "a", "SETLK", "R", 300, 50, "ok")
    lk("P", "a", "GETLK", "W", 340, 1, "R 210+140 by Q")
    lk("P", "a", "GETLK", "R", 0, 1000, "W 200+10 by Q")
    lk("Q", "a", "SETLK", "W", 220, 10, "ok")
    lk("P", "a", "GETLK", "W", 210, 1000, "R 210+10 by Q")
    lk("Q", "a", "SETLK", "R", 200, 150, "ok")
    lk("P", "a", "GETLK", "W", 0, 0, "R 200+150 by Q")
    lk("Q", "a", "SETLK", "U", 250, 0, "ok")
    lk("P", "a", "GETLK", "W", 0, 0, "R 200+50 by Q")
    lk("Q", "a", "SETLK", "U", 0, 0, "ok")

    # Two fds in one process are one owner; closing either drops all its locks.
    s.do("P", "ok", op="open", fd="b", file="f")
    lk("P", "a", "SETLK", "W", 1000, 10, "ok")
    lk("P", "b", "SETLK", "W", 1005, 10, "ok")
    lk("P", "b", "GETLK", "W", 0, 0, "unlocked")
    lk("Q", "a", "GETLK", "W", 0, 0, "W 1000+15 by P")
    lk("P", "b", "SETLK", "U", 1000, 5, "ok")
    lk("Q", "a", "GETLK", "R", 0, 0, "W 1005+10 by P")
    s.do("P", "ok", op="close", fd="b")
    lk("Q", "a", "GETLK", "W", 0, 0, "unlocked")

    # Locks to end of file (len 0) cover any offset past their start.
    lk("P", "a", "SETLK", "W", 5000, 0, "ok")
    lk("Q", "a", "GETLK", "R", 1 << 40, 1, "W 5000+0 by P")
    lk("Q", "a", "SETLK", "R", 4999, 1, "ok")
    lk("Q", "a", "SETLK", "R", 9999999, 1, "EAGAIN")
    lk("P", "a", "SETLK", "U", 6000, 1000, "ok")
    lk("Q", "a", "GETLK", "W", 5500, 1000, "W 5000+1000 by P")
    lk("Q", "a", "GETLK", "W", 6000, 1000, "unlocked")
    lk("Q", "a", "GETLK", "W", 6000, 1001, "W 7000+0 by P")
    lk("P", "a", "SETLK", "U", 0, 0, "ok")
    lk("Q", "a", "SETLK", "U", 0, 0, "ok")

    # A blocked F_SETLKW is granted when the holder unlocks.
    lk("P", "a", "SETLK", "W", 0, 10, "ok")
    s.start_wait("Q", "a", "W", 5, 1)
    lk("R", "a", "GETLK", "W", 5, 1, "W 0+10 by P")
    lk("P", "a", "SETLK", "U", 0, 5, "ok")
    lk("P", "a", "SETLK", "U", 6, 4, "ok")
    s.check_blocked("Q")
    lk("P", "a", "SETLK", "U", 5, 1, "ok")
    s.finish_wait("Q", "ok")
    lk("R", "a", "GETLK", "R", 0, 0, "W 5+1 by Q")

    # ... and when the holder closes the file.
    s.start_wait("R", "a", "R", 0, 10)
    s.do("Q", "ok", op="close", fd="a")
    s.finish_wait("R", "ok")
    lk("P", "a", "GETLK", "W", 0, 0, "R 0+10 by R")
    lk("R", "a", "SETLK", "U", 0, 0, "ok")
    s.do("Q", "ok", op="open", fd="a", file="f")

    # Several waiting readers are all granted when the writer unlocks.
    lk("P", "a", "SETLK", "W", 0, 1, "ok")
    s.start_wait("Q", "a", "R", 0, 1)
    s.start_wait("R", "a", "R", 0, 1)
    lk("P", "a", "SETLK", "U", 0, 1, "ok")
    s.finish_wait("Q", "ok")
    s.finish_wait("R", "ok")
    lk("P", "a", "SETLK", "W", 0, 1, "EAGAIN")
    lk("Q", "a", "SETLK", "U", 0, 0, "ok")
    lk("R", "a", "SETLK", "U", 0, 0, "ok")

    # A blocked F_SETLKW interrupted by a signal fails with EINTR and takes nothing.
    lk("P", "a", "SETLK", "W", 100, 1, "ok")
    s.do("R", "EINTR", op="lock", fd="a", cmd="SETLKW", type="W", start=100, len=1, alarm_ms=300)
    lk("Q", "a", "GETLK", "W", 100, 1, "W 100+1 by P")
    lk("P", "a", "SETLK", "U", 100, 1, "ok")
    lk("Q", "a", "GETLK", "W", 0, 0, "unlocked")
    lk("R", "a", "SETLK", "W", 100, 1, "ok")
    lk("R", "a", "SETLK", "U", 100, 1, "ok")

    # A process killed while blocked in F_SETLKW leaves nothing behind.
    lk("P", "a", "SETLK", "W", 200, 1, "ok")
    s.start_wait("R", "a", "W", 200, 1)
    s.kill("R")
    lk("Q", "a", "GETLK", "W", 0, 0, "W 200+1 by P")
    lk("P", "a", "SETLK", "U", 200, 1, "ok")
    lk("Q", "a", "GETLK", "W", 0, 0, "unlocked")
    lk("Q", "a", "SETLK", "W", 200, 1, "ok")
    lk("Q", "a", "SETLK", "U", 200, 1, "ok")

    # A process's locks go away when it exits.
    lk("Q", "a", "SETLK", "W", 0, 0, "ok")
    s.do("Q", "ok", op="exit")
    os.waitpid(s.workers["Q"].pid, 0)
    lk("P", "a", "GETLK", "W", 0, 0, "unlocked")

    for n in "P":
        s.do(n, "ok", op="exit")
        os.waitpid(s.workers[n].pid, 0)
    s.lines.append("mismatches %d" % s.mismatches)
    print("\n".join(s.lines))


if __name__ == "__main__":
    main()
