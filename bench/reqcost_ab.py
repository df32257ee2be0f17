#!/usr/bin/env python3
"""A/B of one lever on the request-path yardstick: the same server kind of
`reqcost_bench.py` measured with two (or more) verge binaries or components, the
variants alternating round by round, fresh processes each time. Loopback only,
bounded by --rounds and --duration.

    python3 bench/reqcost_ab.py --server "geo-router -> origin" --rounds 4 \\
        --variant old=target/release/verge,/tmp/geo-router-before.wasm \\
        --variant new=target/release/verge,examples/geo-router/geo-router.wasm

A variant is LABEL=VERGE,COMPONENT; the component takes the place of the server
kind's own (the hello or geo-router one). Native binaries default to
$CARGO_TARGET_DIR/release, guests to the build-guests output.
"""
import argparse
import os
import statistics
import tempfile

import reqcost_bench


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True, help="a server kind of reqcost_bench.py")
    p.add_argument("--variant", action="append", required=True, help="LABEL=VERGE,COMPONENT")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--conns", type=int, default=32)
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    p.add_argument("--native-dir", default=f"{target}/release")
    p.add_argument("--guests", default=f"{target}/guests/components")
    args = p.parse_args()

    variants = {}
    for spec in args.variant:
        label, rest = spec.split("=", 1)
        verge, component = rest.split(",", 1)
        variants[label] = (os.path.abspath(verge), os.path.abspath(component))

    here = os.path.dirname(os.path.abspath(__file__))
    results = {label: [] for label in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for label, (verge, component) in variants.items():
                ns = argparse.Namespace(
                    verge=verge, native=f"{args.native_dir}/native-hello",
                    native_proxy=f"{args.native_dir}/native-proxy",
                    raw_hello=f"{args.guests}/raw-hello.wasm", hello=component,
                    geo_router=component, nginx="/usr/sbin/nginx",
                    hostile=f"{args.guests}/hostile.wasm",
                    cached_api=os.path.join(here, "..", "examples", "cached-api"),
                    conns=args.conns, duration=args.duration)
                m = reqcost_bench.measure(ns, tmp, args.server)
                results[label].append(m)
                print(f"round {r + 1} {label:12} {m['rps']:8.0f} req/s  CPU {m['cpu']:6.1f} µs/req"
                      f"  switches {m['ctx']:.2f}/req", flush=True)
    print(f"\nMedian of {args.rounds} rounds, wrk -t1 -c{args.conns}, {args.duration} s each:")
    for label, ms in results.items():
        cpu = statistics.median(m["cpu"] for m in ms)
        rps = statistics.median(m["rps"] for m in ms)
        print(f"{label:12} CPU {cpu:6.1f} µs/req  {rps:8.0f} req/s")


if __name__ == "__main__":
    main()
