#!/usr/bin/env python3
"""Where a command's CPU goes over time, from /proc (no perf, no root).

    benches/cpu_trace.py [--interval S] [--also PATTERN] [--threads N] -- CMD...

Runs CMD and, every S seconds (default 0.1), prints how many cores the whole
machine was busy (/proc/stat), the cores CMD used, and with --also those of the
oldest process whose command line matches PATTERN (`pgrep -f`, e.g. the
registry serving the blobs). With --threads N, also the N busiest threads of
CMD, in % of a core per interval. At the end, per thread of CMD: its CPU time,
its time runnable but waiting on the run queue, the rest (blocked), and its
time slices (/proc/<pid>/task/<tid>/schedstat). docs/performance.md ("Batch
scheduling", "A layer decoded ahead") quotes it, e.g.

    benches/cpu_trace.py --also 'pulltime serve' -- \\
        target/release/pulltime pull 127.0.0.1:PORT/img:ml --dest /dev/shm/t --tmp-dir /dev/shm -q

Ticks are 10 ms: at short intervals the per-thread figures are coarse.
"""
import argparse
import os
import subprocess
import sys
import time


def ticks(path):
    """utime + stime of /proc/.../stat, in clock ticks (0 if gone)."""
    try:
        text = open(path).read()
    except OSError:
        return 0
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def machine():
    """(all jiffies, idle + iowait jiffies) from /proc/stat."""
    f = list(map(int, open("/proc/stat").readline().split()[1:]))
    return sum(f), f[3] + f[4]


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--also")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("cmd", nargs="+")
    a = ap.parse_args()
    hz = os.sysconf("SC_CLK_TCK")
    cores = os.cpu_count()
    also = None
    if a.also:
        found = subprocess.run(["pgrep", "-o", "-f", a.also], capture_output=True, text=True)
        if not found.stdout.strip():
            sys.exit(f"cpu_trace.py: no process matches {a.also!r}")
        also = int(found.stdout.split()[0])
    proc = subprocess.Popen(a.cmd, stdout=subprocess.DEVNULL)
    start = time.time()
    first, last, rows = {}, {}, []
    prev_machine, prev_cmd = machine(), 0
    prev_also = ticks(f"/proc/{also}/stat") if also else 0
    prev_tid = {}
    while proc.poll() is None:
        time.sleep(a.interval)
        now = time.time() - start
        per_tid = {}
        try:
            tids = os.listdir(f"/proc/{proc.pid}/task")
        except OSError:
            tids = []
        for tid in tids:
            base = f"/proc/{proc.pid}/task/{tid}"
            t = ticks(f"{base}/stat")
            per_tid[tid] = t - prev_tid.get(tid, 0)
            prev_tid[tid] = t
            try:
                run, wait, slices = map(int, open(f"{base}/schedstat").read().split())
            except (OSError, ValueError):
                continue
            first.setdefault(tid, (now, run, wait, slices))
            last[tid] = (now, run, wait, slices)
        m = machine()
        total, idle = m[0] - prev_machine[0], m[1] - prev_machine[1]
        prev_machine = m
        c = ticks(f"/proc/{proc.pid}/stat")
        line = f"{now:6.2f}s machine {cores * (total - idle) / max(total, 1):4.2f} cores, cmd {(c - prev_cmd) / hz / a.interval:4.2f}"
        prev_cmd = c
        if also:
            t = ticks(f"/proc/{also}/stat")
            line += f", also {(t - prev_also) / hz / a.interval:4.2f}"
            prev_also = t
        rows.append((line, per_tid))
    busiest = sorted(prev_tid, key=lambda t: -prev_tid[t])[: a.threads]
    if busiest:
        print("threads (% of a core):", " ".join(busiest))
    for line, per_tid in rows:
        extra = " ".join(f"{100 * per_tid.get(t, 0) / hz / a.interval:4.0f}" for t in busiest)
        print(line + ("  | " + extra if extra else ""))
    # schedstat counts from the thread's start; it was first seen at most one
    # interval after that, which bounds the error of "blocked".
    print(f"exit {proc.returncode}; per thread: CPU, runnable but waiting, about blocked (s), time slices")
    for tid in sorted(last, key=lambda t: -last[t][1])[:8]:
        t0, (t1, run, wait, slices) = first[tid][0], last[tid]
        run, wait = run / 1e9, wait / 1e9
        blocked = max(0.0, t1 - t0 + a.interval - run - wait)
        print(f"  tid {tid}: {run:5.2f} {wait:5.2f} {blocked:5.2f}  {slices}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
