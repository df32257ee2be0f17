#!/usr/bin/env python3
"""The proxy benchmark: examples/geo-router in `verge serve`, proxying to a native
hyper origin on loopback, against the same wrk hitting that origin directly; measured
alternately in one run (fresh processes per measurement).

Reports req/s, p50/p99 for both at -c32 and -c1 and their ratio; origin connections
opened per 10,000 proxied requests (pooling keeps it near the concurrency); and the
latency one subrequest adds, from test-programs/examples/outbound.rs sending 0 and 10
sequential subrequests per request at -c1. Loopback only, bounded by --duration.
"""
import argparse
import statistics
import subprocess
import tempfile
import urllib.request

from http_bench import free_port, run_wrk, start, stop, warm_wrk as wrk


def origin_connections(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__connections", timeout=10) as r:
        return int(r.read()) - 1  # not counting this request's own connection


def write_manifest(path, origin_port, backends):
    with open(path, "w") as f:
        f.write('manifest_version = 1\nname = "bench"\n')
        for name in backends:
            f.write(f'[backends.{name}]\nurl = "http://127.0.0.1:{origin_port}"\n'
                    "allow_private = true\n")
        f.write('[geo.overrides."127.0.0.1"]\ncountry_code = "JP"\n')


def measure(args, tmp, conns, proxied):
    oport = free_port()
    origin = start([args.native, f"127.0.0.1:{oport}"], oport)
    verge = None
    try:
        if not proxied:
            rps, total, p50, p99 = wrk(oport, conns, args.duration)
            return dict(rps=rps, p50=p50, p99=p99)
        manifest = f"{tmp}/geo-router.toml"
        write_manifest(manifest, oport, ["origin-apac", "origin-eu", "origin-us"])
        vport = free_port()
        verge = start([args.verge, "serve", args.geo_router, "--manifest", manifest,
                       "--listen", f"127.0.0.1:{vport}", "--cache-dir", f"{tmp}/cache"], vport)
        subprocess.run(["wrk", "-t1", "-c4", "-d1s", f"http://127.0.0.1:{vport}/"],
                       capture_output=True, check=True)
        before = origin_connections(oport)
        rps, total, p50, p99 = run_wrk(vport, conns, args.duration)
        opened = origin_connections(oport) - before - 1
        return dict(rps=rps, p50=p50, p99=p99, conns_per_10k=opened * 10000 / total)
    finally:
        if verge:
            stop(verge)
        stop(origin)


def subrequest_cost(args, tmp):
    """µs per subrequest: (latency with 10 subrequests - with 0) / 10, at -c1."""
    oport = free_port()
    origin = start([args.native, f"127.0.0.1:{oport}"], oport)
    manifest = f"{tmp}/outbound.toml"
    write_manifest(manifest, oport, ["origin"])
    vport = free_port()
    verge = start([args.verge, "serve", args.outbound, "--manifest", manifest,
                   "--listen", f"127.0.0.1:{vport}", "--cache-dir", f"{tmp}/cache"], vport)
    try:
        lat = {}
        for n in (0, 10):
            rps, _, p50, _ = wrk(vport, 1, args.duration, f"/many/{n}/http/origin/")
            lat[n] = (1e6 / rps, p50 * 1000)
        mean = (lat[10][0] - lat[0][0]) / 10
        median = (lat[10][1] - lat[0][1]) / 10
        return mean, median, lat
    finally:
        stop(verge)
        stop(origin)


def main():
    ap = argparse.ArgumentParser()
    for flag in ["verge", "native", "geo-router", "outbound"]:
        ap.add_argument(f"--{flag}", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="verge-proxy-bench-")

    results = {}
    for rnd in range(args.rounds):
        for conns in (32, 1):
            for proxied in (True, False):
                r = measure(args, tmp, conns, proxied)
                results.setdefault((proxied, conns), []).append(r)
                name = "geo-router" if proxied else "direct"
                extra = (f" origin conns/10k {r['conns_per_10k']:.1f}" if proxied else "")
                print(f"round {rnd + 1} c{conns:<2} {name:<10} {r['rps']:>9.0f} req/s "
                      f"p50 {r['p50']:.3f} ms p99 {r['p99']:.3f} ms{extra}", flush=True)

    def med(proxied, conns, key):
        return statistics.median(r[key] for r in results[(proxied, conns)])

    print()
    print(f"Median of {args.rounds} rounds, wrk -t1, {args.duration} s each:")
    print()
    print("| path | conns | req/s | p50 ms | p99 ms | origin connections per 10k requests |")
    print("|---|---:|---:|---:|---:|---:|")
    for conns in (32, 1):
        for proxied in (True, False):
            c = f"{med(proxied, conns, 'conns_per_10k'):.1f}" if proxied else "—"
            print(f"| {'geo-router → origin' if proxied else 'origin direct'} | {conns} | "
                  f"{med(proxied, conns, 'rps'):.0f} | {med(proxied, conns, 'p50'):.3f} | "
                  f"{med(proxied, conns, 'p99'):.3f} | {c} |")
    print()
    for conns in (32, 1):
        ratio = statistics.median(d["rps"] / p["rps"] for p, d in
                                  zip(results[(True, conns)], results[(False, conns)]))
        print(f"-c{conns}: a proxied request costs {ratio:.2f}x a direct one (direct req/s / proxied req/s)")
    mean, median, lat = subrequest_cost(args, tmp)
    print(f"one subrequest adds {mean:.0f} µs (mean, from req/s) / {median:.0f} µs (p50) "
          f"at -c1: 0 subrequests {lat[0][0]:.0f} µs, 10 subrequests {lat[10][0]:.0f} µs per request")


if __name__ == "__main__":
    main()
