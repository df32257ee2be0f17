#!/usr/bin/env python3
"""The HTTP half of the cache benchmark, loopback only, bounded by --duration.

1. examples/cached-api GET /items/1 with its HTTP cache on (every request after the
   first is a hit: no guest runs), the same app with the cache off (the guest runs
   for every request), and the SDK hello, measured alternately in fresh processes at
   -c32 and -c1. Ratios: hit / hello and hit / uncached req/s.
2. Purge latency: POST /admin/v1/apps/cached-api/purge/keys/item-1 through the admin
   listener, sequentially, p50 and p99 of the round trip.
"""
import argparse
import http.client
import os
import shutil
import statistics
import tempfile
import time

from http_bench import free_port, start, stop, wait_port, warm_wrk as wrk

TOKEN = "bench-token-0123456789abcdef"


def app_dir(args, tmp, cache_on):
    """A copy of the app's manifest pointing at its built component."""
    d = tempfile.mkdtemp(dir=tmp)
    component = os.path.abspath(os.path.join(args.app, "cached-api.wasm"))
    with open(os.path.join(d, "verge.toml"), "w") as f:
        f.write('manifest_version = 1\nname = "cached-api"\n'
                f'[build]\noutput = "{component}"\n'
                f'[http_cache]\nenabled = {"true" if cache_on else "false"}\n')
    return d


def measure(args, tmp, name, conns):
    port = free_port()
    common = ["--listen", f"127.0.0.1:{port}", "--cache-dir", f"{tmp}/cache",
              "--data-dir", tempfile.mkdtemp(dir=tmp)]
    if name == "hello":
        cmd, path = [args.verge, "serve", args.hello] + common, "/"
    else:
        cmd = [args.verge, "serve", app_dir(args, tmp, name == "hit"), "--no-build"] + common
        path = "/items/1"
    proc = start(cmd, port)
    try:
        rps, _, p50, p99 = wrk(port, conns, args.duration, path)
        return dict(rps=rps, p50=p50, p99=p99)
    finally:
        stop(proc)


def purge_latency(args, tmp, n=500):
    port, admin = free_port(), free_port()
    cmd = [args.verge, "serve", app_dir(args, tmp, True), "--no-build",
           "--listen", f"127.0.0.1:{port}", "--cache-dir", f"{tmp}/cache",
           "--data-dir", tempfile.mkdtemp(dir=tmp), "--admin-listen", f"127.0.0.1:{admin}"]
    os.environ["VERGE_ADMIN_TOKEN"] = TOKEN
    proc = start(cmd, port)
    try:
        wait_port(admin, proc)
        conn = http.client.HTTPConnection("127.0.0.1", admin)
        app = http.client.HTTPConnection("127.0.0.1", port)
        times = []
        for _ in range(n):
            app.request("GET", "/items/1")
            app.getresponse().read()
            t = time.perf_counter()
            conn.request("POST", "/admin/v1/apps/cached-api/purge/keys/item-1",
                         headers={"Authorization": f"Bearer {TOKEN}"})
            resp = conn.getresponse()
            resp.read()
            times.append((time.perf_counter() - t) * 1000)
            assert resp.status == 200, resp.status
        times.sort()
        return times[len(times) // 2], times[int(len(times) * 0.99)]
    finally:
        stop(proc)


def main():
    ap = argparse.ArgumentParser()
    for flag in ["verge", "hello", "app"]:
        ap.add_argument(f"--{flag}", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="verge-cache-bench-", dir="/var/tmp")
    names = ("hit", "uncached", "hello")
    try:
        results = {}
        for rnd in range(args.rounds):
            for conns in (32, 1):
                for name in names:
                    r = measure(args, tmp, name, conns)
                    results.setdefault((name, conns), []).append(r)
                    print(f"round {rnd + 1} c{conns:<2} {name:<9} {r['rps']:>8.0f} req/s "
                          f"p50 {r['p50']:.3f} ms p99 {r['p99']:.3f} ms", flush=True)

        def med(name, conns, key):
            return statistics.median(r[key] for r in results[(name, conns)])

        print()
        print(f"## cached-api from the cache vs uncached vs hello: median of {args.rounds} "
              f"rounds, wrk -t1, {args.duration} s each")
        print()
        print("| what | conns | req/s | p50 ms | p99 ms |")
        print("|---|---:|---:|---:|---:|")
        for conns in (32, 1):
            for name in names:
                print(f"| {name} | {conns} | {med(name, conns, 'rps'):.0f} | "
                      f"{med(name, conns, 'p50'):.3f} | {med(name, conns, 'p99'):.3f} |")
        print()
        for conns in (32, 1):
            for other in ("hello", "uncached"):
                ratio = statistics.median(h["rps"] / o["rps"] for h, o in
                                          zip(results[("hit", conns)], results[(other, conns)]))
                print(f"-c{conns}: hit / {other} = {ratio:.2f}x")
        p50, p99 = purge_latency(args, tmp)
        print()
        print(f"## purge by surrogate key through the admin API: p50 {p50:.3f} ms, p99 {p99:.3f} ms "
              "(HTTP round trip on loopback, sequential)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
