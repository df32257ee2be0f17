#!/usr/bin/env python3
"""The languages benchmark, loopback only, bounded by --rounds and --duration.

For the hello app of each template (`verge init --lang rust|js|python`, GET / →
"Hello from the edge!"):
1. `verge build`: the first build (installing the pinned tools: cargo's guest build,
   `npm ci`, a .venv), a rebuild after a touch, and the component's size;
2. `verge serve`: start to listening with an empty compile cache (the compile) and
   with a warm one, and the first request's latency;
3. per request, from 200 sequential requests' access lines: the guest CPU time and
   the instance's peak memory — what each request pays on top of the snapshot that
   pre-initialisation (Wizer for componentize-js, componentize-py's own) left;
4. wrk at -c1 and -c8, the languages alternating, fresh processes; req/s as a ratio
   to the Rust app of the same round.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request

from http_bench import free_port, stop, wait_port, warm_wrk

LANGS = ("rust", "js", "python")


def run(cmd, cwd=None):
    started = time.monotonic()
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd}: {out.stderr}")
    return time.monotonic() - started


def build(args, tmp, lang):
    app = os.path.join(tmp, lang)
    run([args.verge, "init", f"hello-{lang}", "--lang", lang, "--path", app])
    first = run([args.verge, "build"], cwd=app)
    source = {"rust": "src/lib.rs", "js": "src/index.js", "python": "src/app.py"}[lang]
    os.utime(os.path.join(app, source))
    again = run([args.verge, "build"], cwd=app)
    size = os.path.getsize(os.path.join(app, f"hello-{lang}.wasm"))
    return app, dict(first=first, rebuild=again, size=size)


def serve(args, app, cache, log=None):
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [args.verge, "serve", app, "--no-build", "--listen", f"127.0.0.1:{port}",
         "--cache-dir", cache, "--data-dir", os.path.join(cache, "data")],
        stdout=log or subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc, timeout=120)
    return proc, port, time.monotonic() - started


def get(port):
    started = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as resp:
        body = resp.read()
    assert resp.status == 200 and body.startswith(b"Hello"), body
    return time.monotonic() - started


def start_up(args, tmp, app):
    """Cold start (compile), warm start, first request; then per-request costs."""
    cache = tempfile.mkdtemp(dir=tmp)
    proc, _, cold = serve(args, app, cache)
    stop(proc)
    log_path = os.path.join(cache, "access.log")
    with open(log_path, "w") as log:
        proc, port, warm = serve(args, app, cache, log)
        first = get(port)
        for _ in range(200):
            get(port)
        stop(proc)
    lines = [json.loads(l) for l in open(log_path) if l.startswith("{")]
    access = [l for l in lines if l.get("type") == "access"][1:]
    return dict(
        cold=cold, warm=warm, first=first,
        cpu_us=statistics.median(l["guest_cpu_us"] for l in access),
        duration_us=statistics.median(l["duration_us"] for l in access),
        memory=statistics.median(l["peak_memory_bytes"] for l in access),
    ), cache


def throughput(args, app, cache, conns):
    proc, port, _ = serve(args, app, cache)
    try:
        rps, _, p50, p99 = warm_wrk(port, conns, args.duration)
        return dict(rps=rps, p50=p50, p99=p99)
    finally:
        stop(proc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--verge", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="verge-bench-languages-")

    apps, builds, starts, caches = {}, {}, {}, {}
    for lang in LANGS:
        apps[lang], builds[lang] = build(args, tmp, lang)
        starts[lang], caches[lang] = start_up(args, tmp, apps[lang])
        b, s = builds[lang], starts[lang]
        print(f"{lang:<7} build {b['first']:.1f} s, rebuild {b['rebuild']:.1f} s, "
              f"{b['size'] / 2**20:.1f} MiB; start cold {s['cold']:.2f} s, warm {s['warm'] * 1000:.0f} ms, "
              f"first request {s['first'] * 1000:.1f} ms; per request: guest CPU {s['cpu_us']:.0f} us, "
              f"{s['duration_us']:.0f} us in verge, peak memory {s['memory'] / 2**20:.1f} MiB", flush=True)

    results = {}
    for rnd in range(args.rounds):
        for conns in (1, 8):
            for lang in LANGS:
                r = throughput(args, apps[lang], caches[lang], conns)
                results.setdefault((lang, conns), []).append(r)
                print(f"round {rnd + 1} c{conns} {lang:<7} {r['rps']:>8.0f} req/s "
                      f"p50 {r['p50']:.3f} ms p99 {r['p99']:.3f} ms", flush=True)

    def med(lang, conns, key):
        return statistics.median(r[key] for r in results[(lang, conns)])

    def ratio(lang, conns):
        return statistics.median(x["rps"] / y["rps"] for x, y in
                                 zip(results[(lang, conns)], results[("rust", conns)]))

    print()
    print(f"Median of {args.rounds} rounds, wrk -t1, {args.duration} s each, GET / of each template:")
    print()
    print("| language | build (first / again) | size | start: compile / from cache | first request "
          "| guest CPU per request | peak memory per instance | req/s -c1 (÷ Rust) | req/s -c8 (÷ Rust) "
          "| p50 -c1 |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for lang in LANGS:
        b, s = builds[lang], starts[lang]
        print(f"| {lang} | {b['first']:.1f} s / {b['rebuild']:.1f} s | {b['size'] / 2**20:.1f} MiB "
              f"| {s['cold']:.2f} s / {s['warm'] * 1000:.0f} ms | {s['first'] * 1000:.1f} ms "
              f"| {s['cpu_us']:.0f} µs | {s['memory'] / 2**20:.1f} MiB "
              f"| {med(lang, 1, 'rps'):.0f} ({ratio(lang, 1):.2f}) "
              f"| {med(lang, 8, 'rps'):.0f} ({ratio(lang, 8):.2f}) | {med(lang, 1, 'p50'):.3f} ms |")


if __name__ == "__main__":
    main()
