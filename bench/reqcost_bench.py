#!/usr/bin/env python3
"""The request-path yardstick (issue 19): what each server process spends per request.

On a 2-vCPU machine shared by wrk, the origin and the server, req/s measures the
machine more than the server. So, besides req/s and p50/p99 (wrk -t1 -c32), each
measurement reads the server's own CPU time (utime + stime from /proc, every process
of the server: nginx's master and workers) and its context switches (voluntary and
involuntary, summed over its threads) before and after, divided by the requests
served. Servers, each started fresh, warmed, measured, stopped; rounds alternate:

- native hello: hyper answering `hello` (bench/src/bin/native-hello.rs)
- verge raw-hello: a `wasi:http` handler on the plain wasip2 bindings
- verge SDK hello: the Rust SDK's hello (examples/hello, no log line per request)
- geo-router -> origin: examples/geo-router proxying to the native hello as origin
- geo-router, cache = false: the same, its backends without the read-through cache
- native proxy -> origin: hyper + the pooled hyper-util client (bench/src/bin/native-proxy.rs)
- nginx proxy_pass -> origin: Debian's nginx, 2 workers, keepalive upstream
- cached-api hit: examples/cached-api with its HTTP cache in front, GET /items/1
  answered from the cache (every request after the first)
- "…, --threads 0": Verge serving every connection on one multi-threaded tokio
  runtime (before request threads), against its default of a single-threaded
  runtime per core with its own origin pools

Then -c1000 against the SDK hello (does any request fail?), and a mixed load: test-programs' hostile guest answering `/` (an echo, as cheap as
hello) at -c32 while a second wrk keeps 2 requests of `/busy?ms=40` (40 ms of CPU
each) in flight: the p99 of the cheap requests, with request threads and with one
shared runtime. A CPU-bound guest yields at every epoch tick (1 ms), so it must not
starve the other connections of its thread.

Loopback only; every run is bounded by --duration.
"""
import argparse
import glob
import os
import statistics
import subprocess
import tempfile

from http_bench import free_port, run_wrk, start, stop

TICKS = os.sysconf("SC_CLK_TCK")


def pids_of(proc):
    """The server's processes: it and its children (nginx's workers)."""
    pids = [proc.pid]
    for path in glob.glob(f"/proc/{proc.pid}/task/*/children"):
        with open(path) as f:
            pids += [int(p) for p in f.read().split()]
    return pids


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / TICKS


def switches(pids):
    total = 0
    for pid in pids:
        for status in glob.glob(f"/proc/{pid}/task/*/status"):
            try:
                with open(status) as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                            total += int(line.split()[1])
            except FileNotFoundError:
                pass  # a thread that ended meanwhile
    return total


def geo_manifest(path, origin_port, cache):
    with open(path, "w") as f:
        f.write('manifest_version = 1\nname = "geo-router"\n')
        for name in ["origin-apac", "origin-eu", "origin-us"]:
            f.write(f'[backends.{name}]\nurl = "http://127.0.0.1:{origin_port}"\n'
                    f"allow_private = true\n")
            if not cache:
                f.write("cache = false\n")
        f.write('[geo.overrides."127.0.0.1"]\ncountry_code = "JP"\n')


def nginx_conf(path, port, origin_port, tmp):
    with open(path, "w") as f:
        f.write(f"""
worker_processes 2;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    upstream origin {{ server 127.0.0.1:{origin_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
""")


def server(args, tmp, name, port, origin_port):
    if name.endswith(", --threads 0"):
        return server(args, tmp, name.removesuffix(", --threads 0"), port, origin_port) + [
            "--threads", "0"]
    cache = f"{tmp}/cache"
    if name == "native hello":
        return [args.native, f"127.0.0.1:{port}"]
    if name == "verge raw-hello":
        return [args.verge, "serve", args.raw_hello, "--listen", f"127.0.0.1:{port}",
                "--cache-dir", cache]
    if name == "verge SDK hello":
        return [args.verge, "serve", args.hello, "--listen", f"127.0.0.1:{port}",
                "--cache-dir", cache]
    if name.startswith("geo-router"):
        manifest = f"{tmp}/geo-{port}.toml"
        geo_manifest(manifest, origin_port, cache="cache = false" not in name)
        return [args.verge, "serve", args.geo_router, "--manifest", manifest,
                "--listen", f"127.0.0.1:{port}", "--cache-dir", cache]
    if name == "native proxy -> origin":
        return [args.native_proxy, f"127.0.0.1:{port}", f"127.0.0.1:{origin_port}"]
    if name == "cached-api hit":
        d = tempfile.mkdtemp(dir=tmp)
        component = os.path.abspath(os.path.join(args.cached_api, "cached-api.wasm"))
        with open(os.path.join(d, "verge.toml"), "w") as f:
            f.write('manifest_version = 1\nname = "cached-api"\n'
                    f'[build]\noutput = "{component}"\n[http_cache]\nenabled = true\n')
        return [args.verge, "serve", d, "--no-build", "--listen", f"127.0.0.1:{port}",
                "--cache-dir", cache, "--data-dir", tempfile.mkdtemp(dir=tmp)]
    if name == "nginx proxy_pass -> origin":
        conf = f"{tmp}/nginx-{port}.conf"
        nginx_conf(conf, port, origin_port, tmp)
        return [args.nginx, "-c", conf, "-e", f"{tmp}/nginx-error.log"]
    raise ValueError(name)


SERVERS = [
    "native hello",
    "verge raw-hello",
    "verge SDK hello",
    "verge SDK hello, --threads 0",
    "geo-router -> origin",
    "geo-router -> origin, --threads 0",
    "geo-router, cache = false -> origin",
    "native proxy -> origin",
    "nginx proxy_pass -> origin",
    "cached-api hit",
]

# The path each server is asked for (default `/`).
PATHS = {"cached-api hit": "/items/1"}


def measure(args, tmp, name):
    origin = None
    origin_port = free_port()
    if "origin" in name:
        origin = start([args.native, f"127.0.0.1:{origin_port}"], origin_port)
    port = free_port()
    proc = start(server(args, tmp, name, port, origin_port), port)
    try:
        path = PATHS.get(name, "/")
        subprocess.run(["wrk", "-t1", "-c4", "-d1s", f"http://127.0.0.1:{port}{path}"],
                       capture_output=True, check=True)
        pids = pids_of(proc)
        cpu, ctx = cpu_seconds(pids), switches(pids)
        rps, total, p50, p99 = run_wrk(port, args.conns, args.duration, path)
        cpu_us = (cpu_seconds(pids) - cpu) / total * 1e6
        ctx_per = (switches(pids) - ctx) / total
        return dict(rps=rps, p50=p50, p99=p99, cpu=cpu_us, ctx=ctx_per)
    finally:
        stop(proc)
        if origin:
            stop(origin)


def thousand(args, tmp):
    """wrk -c1000 against the SDK hello: requests/s, p99, and every failure wrk saw."""
    port = free_port()
    proc = start([args.verge, "serve", args.hello, "--listen", f"127.0.0.1:{port}",
                  "--cache-dir", f"{tmp}/cache"], port)
    try:
        out = subprocess.run(["wrk", "-t1", "-c1000", f"-d{args.duration}s", "--latency",
                              f"http://127.0.0.1:{port}/"],
                             capture_output=True, text=True, check=True).stdout
        import re
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        sockets = re.search(r"Socket errors: (.*)", out)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
        return rps, p99.group(1) if p99 else "?", sockets.group(1) if sockets else "none", \
            non2xx.group(1) if non2xx else "0"
    finally:
        stop(proc)


def mixed(args, tmp, threads):
    """p99 and req/s of cheap requests beside 2 CPU-bound ones in flight."""
    port = free_port()
    cmd = [args.verge, "serve", args.hostile, "--listen", f"127.0.0.1:{port}",
           "--cache-dir", f"{tmp}/cache"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    proc = start(cmd, port)
    try:
        subprocess.run(["wrk", "-t1", "-c4", "-d1s", f"http://127.0.0.1:{port}/"],
                       capture_output=True, check=True)
        burner = subprocess.Popen(
            ["wrk", "-t1", "-c2", f"-d{args.duration + 2}s",
             f"http://127.0.0.1:{port}/busy?ms=40"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            rps, _, p50, p99 = run_wrk(port, args.conns, args.duration)
        finally:
            burner.wait()
        return dict(rps=rps, p50=p50, p99=p99)
    finally:
        stop(proc)


def main():
    ap = argparse.ArgumentParser()
    for flag in ["verge", "native", "native-proxy", "raw-hello", "hello", "geo-router", "nginx",
                 "hostile", "cached-api"]:
        ap.add_argument(f"--{flag}", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--only", default="", help="server names to measure, separated by ;")
    ap.add_argument("--no-mixed", action="store_true", help="skip the mixed load")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="verge-reqcost-")
    names = [n for n in SERVERS if not args.only or n in args.only.split(";")]
    results = {}
    for rnd in range(args.rounds):
        for name in names:
            r = measure(args, tmp, name)
            results.setdefault(name, []).append(r)
            print(f"round {rnd + 1} {name:<36} {r['rps']:>8.0f} req/s p50 {r['p50']:.3f} ms "
                  f"p99 {r['p99']:.3f} ms  CPU {r['cpu']:6.1f} µs/req  "
                  f"switches {r['ctx']:.2f}/req", flush=True)

    def med(name, key):
        return statistics.median(r[key] for r in results[name])

    print()
    print(f"Median of {args.rounds} rounds, wrk -t1 -c{args.conns}, {args.duration} s each; "
          f"CPU and context switches of the server's own processes per request:")
    print()
    print("| server | req/s | p50 ms | p99 ms | CPU µs / request | context switches / request |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in names:
        print(f"| {name} | {med(name, 'rps'):.0f} | {med(name, 'p50'):.3f} | {med(name, 'p99'):.3f} | "
              f"{med(name, 'cpu'):.1f} | {med(name, 'ctx'):.2f} |")
    print()

    def ratio(a, b, key):
        return statistics.median(x[key] / y[key] for x, y in zip(results[a], results[b]))

    def have(*ns):
        return all(n in results for n in ns)

    if have("verge SDK hello", "native hello"):
        print(f"SDK hello / native hello: CPU {ratio('verge SDK hello', 'native hello', 'cpu'):.1f}x "
              f"(target ≤ 4x, ≤ 40 µs), req/s {ratio('verge SDK hello', 'native hello', 'rps') * 100:.0f} % "
              f"(target ≥ 40 %), p99 {ratio('verge SDK hello', 'native hello', 'p99'):.2f}x (target ≤ 1.2x)")
    if have("verge raw-hello", "native hello"):
        print(f"raw hello / native hello: CPU {ratio('verge raw-hello', 'native hello', 'cpu'):.1f}x, "
              f"req/s {ratio('verge raw-hello', 'native hello', 'rps') * 100:.0f} %")
    if have("geo-router -> origin", "nginx proxy_pass -> origin"):
        print(f"geo-router / nginx proxy_pass: CPU "
              f"{ratio('geo-router -> origin', 'nginx proxy_pass -> origin', 'cpu'):.1f}x "
              f"(target ≤ 3x, ≤ 70 µs), req/s "
              f"{ratio('geo-router -> origin', 'nginx proxy_pass -> origin', 'rps') * 100:.0f} % "
              f"(target ≥ 50 %)")
    if have("geo-router -> origin", "native proxy -> origin"):
        print(f"geo-router / native proxy: CPU "
              f"{ratio('geo-router -> origin', 'native proxy -> origin', 'cpu'):.1f}x")
    for app in ("verge SDK hello", "geo-router -> origin"):
        if have(app, f"{app}, --threads 0"):
            print(f"{app}, request threads / one shared runtime (--threads 0): CPU "
                  f"{ratio(app, f'{app}, --threads 0', 'cpu'):.2f}x, "
                  f"req/s {ratio(app, f'{app}, --threads 0', 'rps'):.2f}x, "
                  f"p99 {ratio(app, f'{app}, --threads 0', 'p99'):.2f}x")
    if have("geo-router -> origin", "verge SDK hello"):
        sub = statistics.median(g["cpu"] - h["cpu"] for g, h in
                                zip(results["geo-router -> origin"], results["verge SDK hello"]))
        print(f"the subrequest's own CPU (geo-router - SDK hello): {sub:.1f} µs (target ≤ 30 µs)")
    if have("cached-api hit", "native hello"):
        print(f"cache hit / native hello: CPU {ratio('cached-api hit', 'native hello', 'cpu'):.1f}x "
              f"(target ≤ 1.5x), req/s {ratio('cached-api hit', 'native hello', 'rps') * 100:.0f} % "
              f"(target ≥ 80 %), p99 {ratio('cached-api hit', 'native hello', 'p99'):.2f}x "
              f"(target ≤ 1.2x)")
    rps, p99, sockets, non2xx = thousand(args, tmp)
    print(f"-c1000 against the SDK hello: {rps:.0f} req/s, p99 {p99}, socket errors: {sockets}, "
          f"non-2xx: {non2xx}")
    if args.no_mixed:
        return
    print()
    runs = {}
    for rnd in range(args.rounds):
        for threads, label in ((None, "request threads"), (0, "--threads 0")):
            r = mixed(args, tmp, threads)
            runs.setdefault(label, []).append(r)
            print(f"round {rnd + 1} mixed load, {label:<15} cheap requests {r['rps']:>8.0f} req/s "
                  f"p50 {r['p50']:.3f} ms p99 {r['p99']:.3f} ms", flush=True)
    for label, rs in runs.items():
        print(f"mixed load ({label}): cheap requests beside 2 x 40 ms CPU burners in flight: "
              f"p99 {statistics.median(r['p99'] for r in rs):.2f} ms, "
              f"{statistics.median(r['rps'] for r in rs):.0f} req/s")


if __name__ == "__main__":
    main()
