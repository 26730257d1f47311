"""Compare outcap with the baselines it replaces, each measured in the same run.

Usage: python benches/compare.py [--quick] [--rounds N]

Every figure is the median of interleaved rounds (baseline, then outcap,
then baseline again, ...), so slow drift on a noisy machine hits both
sides alike. Prints one table of ratios; "goal" is the ratio to reach.
Needs outcap installed, `dd` and `cat`, and writes a 50 MiB log to
/tmp/outcap-bench-log50.txt with benches/gen_log.py on first use.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import re
import statistics
import subprocess
import sys
import time
import zlib
from typing import Callable, List, Sequence, Tuple

import outcap
from outcap import _native

HERE = os.path.dirname(os.path.abspath(__file__))
LOG_PATH = "/tmp/outcap-bench-log50.txt"
LOG_SIZE = 50 * 1024 * 1024
ANSI_PATTERN = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def ensure_log() -> str:
    if os.path.exists(LOG_PATH) and os.path.getsize(LOG_PATH) == LOG_SIZE:
        return LOG_PATH
    for generator in (os.path.join(HERE, "gen_log.py"),):
        if os.path.exists(generator):
            subprocess.run([sys.executable, generator, str(LOG_SIZE), LOG_PATH], check=True, stdout=subprocess.DEVNULL)
            return LOG_PATH
    raise SystemExit("no log generator found: put gen_log.py next to this script")


def timed(function: Callable[[], object]) -> float:
    began = time.perf_counter()
    function()
    return time.perf_counter() - began


def interleaved(rounds: int, baseline: Callable[[], object], candidate: Callable[[], object]) -> Tuple[float, float]:
    """Median seconds of each, alternating which runs first."""
    baseline_times: List[float] = []
    candidate_times: List[float] = []
    for index in range(rounds):
        pair = [(baseline, baseline_times), (candidate, candidate_times)]
        for function, times in pair if index % 2 == 0 else reversed(pair):
            times.append(timed(function))
    return statistics.median(baseline_times), statistics.median(candidate_times)


ROWS: List[Tuple[str, str, str, str, str]] = []


def report(measurement: str, baseline: str, ratio: float, goal: str, detail: str) -> None:
    ROWS.append((measurement, baseline, f"{ratio:.2f}x", goal, detail))
    print(f"  {measurement}: {ratio:.2f}x vs {baseline} ({detail})", file=sys.stderr, flush=True)


def bench_gigabyte(rounds: int, count: int) -> None:
    size = 64 * 1024 * count
    dd = ["dd", "bs=64K", f"count={count}", "if=/dev/zero", "status=none"]
    pipe = lambda: subprocess.run(f"{' '.join(dd)} | cat > /dev/null", shell=True, check=True)
    ours = lambda: outcap.run(dd)
    pipe_time, ours_time = interleaved(rounds, pipe, ours)
    mib = size / 2**20
    report(f"run() capturing {mib:.0f} MiB", "C pipe dd \\| cat", pipe_time / ours_time, ">= 0.9x",
           f"{mib / ours_time:.0f} vs {mib / pipe_time:.0f} MiB/s")
    plain = lambda: subprocess.run(dd, capture_output=True)
    plain_time, ours_time = interleaved(max(1, rounds // 2), plain, ours)
    report(f"run() capturing {mib:.0f} MiB", "subprocess.run", plain_time / ours_time, ">= 4x",
           f"{ours_time:.2f} s vs {plain_time:.2f} s")

    # ru_maxrss survives exec, so it can report the parent's peak; reset the
    # kernel's high-water mark (VmHWM) through clear_refs instead.
    script = (
        "import sys, outcap, subprocess\n"
        "def status(key):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(key): return int(line.split()[1]) / 1024\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "before = status('VmRSS:')\n"
        f"dd = {dd!r}\n"
        "if sys.argv[1] == 'outcap': outcap.run(dd)\n"
        "else: subprocess.run(dd, capture_output=True)\n"
        "print(status('VmHWM:') - before)\n"
    )
    growth = {}
    for tool in ("outcap", "subprocess"):
        completed = subprocess.run([sys.executable, "-c", script, tool], capture_output=True, text=True, check=True)
        growth[tool] = float(completed.stdout)
    ROWS.append((f"peak RSS growth capturing {mib:.0f} MiB", "-", f"{growth['outcap']:.1f} MiB", "<= 30 MiB",
                 f"subprocess: {growth['subprocess']:.0f} MiB"))


def bench_log_pipeline(rounds: int, log: str) -> None:
    def baseline() -> None:
        completed = subprocess.run(["cat", log], capture_output=True)
        stripped = ANSI_PATTERN.sub(b"", completed.stdout)
        gzip.compress(stripped[-10 * 1024 * 1024:], compresslevel=6)

    ours = lambda: outcap.run(["cat", log])
    baseline_time, ours_time = interleaved(rounds, baseline, ours)
    report("run(cat log50) strip + gzip", "subprocess + re + gzip -6", baseline_time / ours_time, ">= 3x",
           f"{ours_time:.2f} s vs {baseline_time:.2f} s")


def bench_true(rounds: int) -> None:
    plain = lambda: [subprocess.run(["/bin/true"], capture_output=True) for _ in range(100)]
    ours = lambda: [outcap.run(["/bin/true"]) for _ in range(100)]
    plain_time, ours_time = interleaved(rounds, plain, ours)
    report("100 x run(/bin/true)", "subprocess.run", plain_time / ours_time, ">= 1.15x",
           f"{ours_time * 10:.2f} ms vs {plain_time * 10:.2f} ms per run")


def bench_strip(rounds: int, data: bytes) -> None:
    baseline_time, ours_time = interleaved(rounds, lambda: ANSI_PATTERN.sub(b"", data), lambda: outcap.strip_ansi(data))
    mb = len(data) / 1e6
    report("strip_ansi(log50)", "re.sub CSI + OSC", baseline_time / ours_time, ">= 10x",
           f"{mb / ours_time:.0f} vs {mb / baseline_time:.0f} MB/s")


def bench_gzip(rounds: int, data: bytes) -> None:
    level = _native.GZIP_DEFAULT_LEVEL
    sample = data[: 10 * 1024 * 1024]
    baseline = lambda: zlib.compress(sample, level)
    ours = lambda: _native.gzip(sample, level)
    baseline_time, ours_time = interleaved(rounds, baseline, ours)
    report(f"gzip level {level} of 10 MiB", f"zlib level {level}", baseline_time / ours_time, ">= 1.7x",
           f"{10.48576 / ours_time:.0f} vs {10.48576 / baseline_time:.0f} MB/s")


LATENCY_CHILD = r"""
import os, sys, time
for _ in range(int(sys.argv[1])):
    os.write(1, b"%.6f\n" % time.time())
    time.sleep(0.01)
"""


def bench_latency(flush_interval: float, count: int) -> None:
    config = outcap.OutputCaptureConfig(streaming_enabled=True, flush_interval=flush_interval)
    delays: List[float] = []
    with outcap.spawn([sys.executable, "-c", LATENCY_CHILD, str(count)], config=config) as process:
        for line in process.lines("stdout"):
            delays.append(time.time() - float(line))
        process.wait()
    delays.sort()
    p50 = delays[len(delays) // 2] * 1000
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))] * 1000
    ROWS.append((f"write-to-iterator latency, flush_interval={flush_interval}", "-",
                 f"p50 {p50:.1f} ms, p99 {p99:.1f} ms", f"p99 <= {flush_interval * 1000 + 5:.0f} ms",
                 f"{len(delays)} writes 10 ms apart"))


def bench_lines(rounds: int, log: str) -> None:
    # A ring that holds the whole log: a pipe makes `cat` wait for a slow
    # reader, while outcap never blocks the child and would drop the oldest
    # bytes instead, so the two only compare when nothing is dropped.
    config = outcap.OutputCaptureConfig(
        streaming_enabled=True, process_ansi=False, compression_enabled=False, max_buffer_size=64 * 1024 * 1024
    )

    def baseline() -> int:
        with subprocess.Popen(["cat", log], stdout=subprocess.PIPE, text=True, encoding="utf-8", errors="replace") as process:
            assert process.stdout is not None
            return sum(1 for _ in process.stdout)

    def ours() -> int:
        with outcap.spawn(["cat", log], config=config) as process:
            return sum(1 for _ in process.lines("stdout"))

    # Popen's text mode also ends lines at a lone CR (universal newlines),
    # so only outcap's count is checked against the LF count.
    with open(log, "rb") as file:
        expected = file.read().count(b"\n") + 1
    assert ours() == expected, "lines() lost or split lines"
    baseline_time, ours_time = interleaved(rounds, baseline, ours)
    report("lines() over log50", "Popen(text=True).stdout", baseline_time / ours_time, ">= 1.2x",
           f"{ours_time:.2f} s vs {baseline_time:.2f} s")


def bench_alines(rounds: int, log: str) -> None:
    # A ring that holds the whole log: a pipe makes `cat` wait for a slow
    # reader, while outcap never blocks the child and would drop the oldest
    # bytes instead, so the two only compare when nothing is dropped.
    config = outcap.OutputCaptureConfig(
        streaming_enabled=True, process_ansi=False, compression_enabled=False, max_buffer_size=64 * 1024 * 1024
    )

    async def baseline() -> int:
        process = await asyncio.create_subprocess_exec("cat", log, stdout=asyncio.subprocess.PIPE, limit=2**20)
        assert process.stdout is not None
        count = 0
        while await process.stdout.readline():
            count += 1
        await process.wait()
        return count

    async def ours() -> int:
        with outcap.spawn(["cat", log], config=config) as process:
            count = 0
            async for _ in process.alines("stdout"):
                count += 1
            return count

    assert asyncio.run(baseline()) == asyncio.run(ours()), "alines() and readline() counts differ"
    baseline_time, ours_time = interleaved(rounds, lambda: asyncio.run(baseline()), lambda: asyncio.run(ours()))
    report("alines() over log50", "asyncio StreamReader.readline", baseline_time / ours_time, ">= 5x",
           f"{ours_time:.2f} s vs {baseline_time:.2f} s")


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per comparison (default: 5)")
    parser.add_argument("--quick", action="store_true", help="64 MiB instead of 1 GiB, and fewer rounds")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    log = ensure_log()
    with open(log, "rb") as file:
        data = file.read()

    bench_gigabyte(rounds, 1024 if args.quick else 16384)
    bench_log_pipeline(rounds, log)
    bench_true(rounds)
    bench_strip(rounds, data)
    bench_gzip(rounds, data)
    bench_latency(0.0, 100 if args.quick else 300)
    bench_latency(0.05, 100 if args.quick else 300)
    bench_lines(rounds, log)
    bench_alines(rounds, log)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, median of {rounds} interleaved rounds")
    print("| measurement | baseline | result | goal | detail |")
    print("|---|---|---|---|---|")
    for row in ROWS:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
