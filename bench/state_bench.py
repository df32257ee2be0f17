#!/usr/bin/env python3
"""The HTTP half of the state benchmark, loopback only, bounded by --duration.

1. examples/url-shortener answering GET /docs (a KV lookup, a 302) against the SDK
   hello (test-programs/examples/hello.rs) in the same run, alternately, fresh
   processes per measurement, at -c32 and -c1. The ratio is shortener / hello req/s.
2. examples/image-resize resizing a 1 MP JPEG (made by make-jpeg) to 300 px, fetched
   from a Python origin on loopback, at -c1: p50/p99 latency and req/s.
"""
import argparse
import http.server
import os
import shutil
import statistics
import subprocess
import tempfile
import threading

from http_bench import free_port, run_wrk, start, stop, warm_wrk as wrk


def measure_app(args, tmp, name, conns):
    port = free_port()
    common = ["--listen", f"127.0.0.1:{port}", "--cache-dir", f"{tmp}/cache"]
    if name == "hello":
        cmd = [args.verge, "serve", args.hello] + common
        path = "/"
    else:
        data = tempfile.mkdtemp(dir=tmp)
        cmd = [args.verge, "serve", args.shortener, "--no-build", "--data-dir", data] + common
        path = "/docs"
    proc = start(cmd, port)
    try:
        rps, _, p50, p99 = wrk(port, conns, args.duration, path)
        return dict(rps=rps, p50=p50, p99=p99)
    finally:
        stop(proc)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve_dir(directory):
    handler = lambda *a, **kw: QuietHandler(*a, directory=directory, **kw)
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def resize_latency(args, tmp):
    files = os.path.join(tmp, "origin", "files")
    os.makedirs(files)
    subprocess.run([args.make_jpeg, os.path.join(files, "photo.jpg"), "1000", "1000"], check=True)
    origin = serve_dir(os.path.join(tmp, "origin"))
    oport = origin.server_address[1]
    manifest = os.path.join(tmp, "image-resize.toml")
    with open(manifest, "w") as f:
        f.write('manifest_version = 1\nname = "image-resize"\n'
                f'[backends.origin]\nurl = "http://127.0.0.1:{oport}"\nallow_private = true\n'
                '[limits]\ncpu_time = "2s"\nmemory = "256MiB"\n'
                '[config]\nrequests_per_second = 100000\n')
    port = free_port()
    proc = start([args.verge, "serve", args.resizer, "--manifest", manifest,
                  "--listen", f"127.0.0.1:{port}", "--cache-dir", f"{tmp}/cache"], port)
    try:
        rps, total, p50, p99 = wrk(port, 1, args.duration, "/files/photo.jpg?w=300")
        return dict(rps=rps, total=total, p50=p50, p99=p99)
    finally:
        stop(proc)
        origin.shutdown()


def main():
    ap = argparse.ArgumentParser()
    for flag in ["verge", "hello", "shortener", "resizer", "make-jpeg"]:
        ap.add_argument(f"--{flag}", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="verge-state-bench-", dir="/var/tmp")
    try:
        results = {}
        for rnd in range(args.rounds):
            for conns in (32, 1):
                for name in ("url-shortener", "hello"):
                    r = measure_app(args, tmp, name, conns)
                    results.setdefault((name, conns), []).append(r)
                    print(f"round {rnd + 1} c{conns:<2} {name:<14} {r['rps']:>8.0f} req/s "
                          f"p50 {r['p50']:.3f} ms p99 {r['p99']:.3f} ms", flush=True)

        def med(name, conns, key):
            return statistics.median(r[key] for r in results[(name, conns)])

        print()
        print(f"## url-shortener vs hello: median of {args.rounds} rounds, wrk -t1, {args.duration} s each")
        print()
        print("| app | conns | req/s | p50 ms | p99 ms |")
        print("|---|---:|---:|---:|---:|")
        for conns in (32, 1):
            for name in ("url-shortener", "hello"):
                print(f"| {name} | {conns} | {med(name, conns, 'rps'):.0f} | "
                      f"{med(name, conns, 'p50'):.3f} | {med(name, conns, 'p99'):.3f} |")
        print()
        for conns in (32, 1):
            ratio = statistics.median(s["rps"] / h["rps"] for s, h in
                                      zip(results[("url-shortener", conns)], results[("hello", conns)]))
            print(f"-c{conns}: url-shortener / hello = {ratio:.2f}x (target >= 0.8x)")

        r = resize_latency(args, tmp)
        print()
        print(f"## image-resize, 1000x1000 JPEG to 300 px, wrk -c1 {args.duration} s")
        print()
        print(f"{r['total']} resizes, {r['rps']:.1f} req/s, p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
