#!/usr/bin/env python3
"""A/B of two verge binaries (or flags) on built apps, e.g. the hello template of
each language (`verge init --lang …`, `verge build`): server CPU per request and
req/s at -c1 and -c8, variants alternating round by round, fresh processes each
time. Loopback only, bounded by --rounds and --duration.

    python3 bench/languages_ab.py --rounds 3 --duration 4 \\
        --app /tmp/hello-py --app /tmp/hello-js \\
        --variant "before=/tmp/verge-before" --variant "after=target/release/verge"

A variant is LABEL=VERGE[ FLAG…] (flags for `verge serve`, space separated).
"""
import argparse
import os
import statistics
import subprocess
import tempfile

from http_bench import free_port, run_wrk, start, stop
from reqcost_bench import cpu_seconds, pids_of


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--app", action="append", required=True, help="a built app directory")
    p.add_argument("--variant", action="append", required=True, help="LABEL=VERGE[ FLAG…]")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=4)
    args = p.parse_args()

    variants = []
    for spec in args.variant:
        label, command = spec.split("=", 1)
        verge, *flags = command.split()
        variants.append((label, os.path.abspath(verge), flags))

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for app in args.app:
                for label, verge, flags in variants:
                    port = free_port()
                    # One compile cache per binary: a different build compiles anew.
                    cache = f"{tmp}/cache-{label}"
                    proc = start([verge, "serve", app, "--no-build", "--listen",
                                  f"127.0.0.1:{port}", "--cache-dir", cache] + flags, port)
                    try:
                        subprocess.run(["wrk", "-t1", "-c4", "-d1s", f"http://127.0.0.1:{port}/"],
                                       capture_output=True, check=True)
                        for conns in (1, 8):
                            pids = pids_of(proc)
                            cpu = cpu_seconds(pids)
                            rps, total, _, _ = run_wrk(port, conns, args.duration, "/")
                            us = (cpu_seconds(pids) - cpu) / total * 1e6
                            key = (os.path.basename(os.path.normpath(app)), conns, label)
                            results.setdefault(key, []).append((us, rps))
                            print(f"round {r + 1} {key[0]} -c{conns} {label}: {us:.0f} µs/req, "
                                  f"{rps:.0f} req/s", flush=True)
                    finally:
                        stop(proc)
    print(f"\nMedian of {args.rounds} rounds, wrk -t1, {args.duration} s each; "
          "CPU of the server process per request:\n")
    print("| app | -c | variant | CPU µs / request | req/s |")
    print("|---|---:|---|---:|---:|")
    for (app, conns, label), runs in sorted(results.items()):
        cpu = statistics.median(x[0] for x in runs)
        rps = statistics.median(x[1] for x in runs)
        print(f"| {app} | {conns} | {label} | {cpu:.0f} | {rps:.0f} |")


if __name__ == "__main__":
    main()
