#!/usr/bin/env python3
"""Alternating wrk runs against verge serve, native hyper and wasmtime serve.

Each server is started fresh for each measurement, warmed up, measured with
`wrk -t1 -cN -dD --latency`, and stopped. Reports req/s, p50/p99, minor page faults
per request, idle and loaded RSS, and per-round ratios (median over rounds). Loopback
only; every run is bounded by --duration.
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("server did not start listening")


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); minflt is field 10.
    return int(fields[7])


def rss_kib(pid, key="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def parse_latency(text, pct):
    m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(port, conns, duration, path="/"):
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} error responses:\n{out}")
    return rps, total, parse_latency(out, 50), parse_latency(out, 99)


def start(cmd, port):
    """Starts a server quietly and waits until it listens on `port`."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def warm_wrk(port, conns, duration, path="/"):
    """A 1 s warm-up at -c4, then the measurement."""
    subprocess.run(["wrk", "-t1", "-c4", "-d1s", f"http://127.0.0.1:{port}{path}"],
                   capture_output=True, check=True)
    return run_wrk(port, conns, duration, path)


def servers(args, cache_dir):
    comp = args.component
    return {
        "verge": lambda port: [args.verge, "serve", comp, "--listen", f"127.0.0.1:{port}",
                                "--cache-dir", cache_dir],
        "native": lambda port: [args.native, f"127.0.0.1:{port}"],
        "wasmtime": lambda port: [args.wasmtime, "serve", "--addr", f"127.0.0.1:{port}", comp],
    }


def measure(cmd, conns, duration):
    port = free_port()
    proc = subprocess.Popen(cmd(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        subprocess.run(["wrk", "-t1", "-c4", "-d1s", f"http://127.0.0.1:{port}/"],
                       capture_output=True, check=True)  # warm-up
        idle = rss_kib(proc.pid)
        faults_before = proc_stat(proc.pid)
        rps, total, p50, p99 = run_wrk(port, conns, duration)
        faults = (proc_stat(proc.pid) - faults_before) / max(total, 1)
        peak = rss_kib(proc.pid, "VmHWM")
        return dict(rps=rps, p50=p50, p99=p99, faults=faults, idle=idle, peak=peak)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def startup(args, cache_dir):
    """Median ms from process start to first response, warm compile cache."""
    # Warm the cache once.
    subprocess.run([args.startup, "1", "--", args.verge, "serve", args.component,
                    "--listen", "127.0.0.1:0", "--cache-dir", cache_dir],
                   capture_output=True, check=True)
    verge = subprocess.run([args.startup, "15", "--", args.verge, "serve", args.component,
                            "--listen", "127.0.0.1:0", "--cache-dir", cache_dir],
                           capture_output=True, text=True, check=True).stdout.strip()
    port = free_port()
    native = subprocess.run([args.startup, "--addr", f"127.0.0.1:{port}", "15", "--",
                             args.native, f"127.0.0.1:{port}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    port = free_port()
    wasmtime = subprocess.run([args.startup, "--addr", f"127.0.0.1:{port}", "15", "--",
                               args.wasmtime, "serve", "--addr", f"127.0.0.1:{port}", args.component],
                              capture_output=True, text=True, check=True).stdout.strip()
    return float(verge), float(native), float(wasmtime)


def main():
    ap = argparse.ArgumentParser()
    for flag in ["verge", "native", "wasmtime", "startup", "component"]:
        ap.add_argument(f"--{flag}", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    args = ap.parse_args()

    cache_dir = tempfile.mkdtemp(prefix="verge-bench-cache-")
    cmds = servers(args, cache_dir)
    # Fill the compile cache first: every measured start must be a warm start.
    measure(cmds["verge"], 1, 1)
    results = {}  # (server, conns) -> list of dicts
    for rnd in range(args.rounds):
        for conns in (32, 1):
            for name in ("verge", "native", "wasmtime"):
                r = measure(cmds[name], conns, args.duration)
                results.setdefault((name, conns), []).append(r)
                print(f"round {rnd + 1} c{conns:<2} {name:<8} {r['rps']:>9.0f} req/s "
                      f"p50 {r['p50']:.3f} ms p99 {r['p99']:.3f} ms "
                      f"faults/req {r['faults']:.2f} rss {r['idle'] // 1024}->{r['peak'] // 1024} MiB",
                      flush=True)

    def med(name, conns, key):
        return statistics.median(r[key] for r in results[(name, conns)])

    def ratio(a, b, conns):
        return statistics.median(x["rps"] / y["rps"]
                                 for x, y in zip(results[(a, conns)], results[(b, conns)]))

    print()
    print(f"Median of {args.rounds} rounds, wrk -t1, {args.duration} s each, hello (5 bytes):")
    print()
    print("| server | conns | req/s | p50 ms | p99 ms | faults/req | RSS idle → peak MiB |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for conns in (32, 1):
        for name in ("verge", "native", "wasmtime"):
            print(f"| {name} | {conns} | {med(name, conns, 'rps'):.0f} | {med(name, conns, 'p50'):.3f} | "
                  f"{med(name, conns, 'p99'):.3f} | {med(name, conns, 'faults'):.2f} | "
                  f"{med(name, conns, 'idle') / 1024:.0f} → {med(name, conns, 'peak') / 1024:.0f} |")
    print()
    for conns in (32, 1):
        print(f"-c{conns}: verge / wasmtime serve = {ratio('verge', 'wasmtime', conns):.2f}x, "
              f"verge / native = {ratio('verge', 'native', conns) * 100:.0f}%, "
              f"wasmtime / native = {ratio('wasmtime', 'native', conns) * 100:.0f}%")
    v, n, w = startup(args, cache_dir)
    print(f"start to first response (median of 15, warm compile cache): "
          f"verge {v:.1f} ms, native {n:.1f} ms, wasmtime serve {w:.1f} ms")


if __name__ == "__main__":
    main()
