"""Stand-in for `litefs passthrough`, to test the mount helper's handling of
daemons that behave and misbehave. Uses a bind mount (needs root).

usage: bind-daemon.py BEHAVIOUR SRC MNT
  good      mount, print "mounted MNT", on SIGTERM unmount and exit 0
  crash     print an error and exit 3 without mounting
  stubborn  mount, announce, ignore SIGTERM
  leaky     mount, announce, on SIGTERM exit 0 without unmounting
"""
import signal
import subprocess
import sys
import time


def main():
    behaviour, src, mnt = sys.argv[1:4]
    if behaviour == "crash":
        sys.stderr.write("bind-daemon: cannot mount %s (on purpose)\n" % mnt)
        sys.exit(3)
    subprocess.run(["mount", "--bind", src, mnt], check=True)

    def on_term(_signum, _frame):
        if behaviour == "good":
            subprocess.run(["umount", mnt], check=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, signal.SIG_IGN if behaviour == "stubborn" else on_term)
    print("mounted " + mnt, flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
