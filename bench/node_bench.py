#!/usr/bin/env python3
"""The edge-node benchmark (issue 8), loopback only, every run bounded.

1. Deploy latency on a warm node: create a service, upload a hello package whose
   component the node has never seen (a custom section makes each one distinct, so
   the upload compiles it), activate it, and wait for its first 200 through the
   public listener. Median and worst of --deploys.
2. Routing overhead: wrk -c32 on one service of a node holding 1,000 services vs a
   node holding one, alternating rounds; throughput ratio.
3. Memory: RSS of the 1,000-service node after a restart (services routed, none
   loaded), after one request to each (all loaded), and of the one-service node;
   per-service figures from the differences.
4. First request to a service not loaded yet (after the restart) vs a warm one.
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import tempfile
import time

from http_bench import free_port, rss_kib, stop, wait_port

TOKEN = "bench-token-0123456789abcdef"


def custom_section(name, payload):
    """A Wasm custom section (id 0): LEB128 size, LEB128 name length, name, payload."""
    def leb(n):
        out = bytearray()
        while True:
            byte = n & 0x7F
            n >>= 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)
    body = leb(len(name)) + name + payload
    return b"\x00" + leb(len(body)) + body


def pack(args, tmp, name, component):
    d = tempfile.mkdtemp(dir=tmp)
    with open(os.path.join(d, "verge.toml"), "w") as f:
        f.write(f'manifest_version = 1\nname = "{name}"\n[build]\noutput = "{component}"\n')
    out = os.path.join(d, f"{name}.vpkg")
    subprocess.run([args.verge, "pack", "--no-build", "-o", out], cwd=d, check=True,
                   capture_output=True)
    with open(out, "rb") as f:
        return f.read()


def distinct_package(args, tmp, i):
    """The hello package with a component no node has compiled yet."""
    with open(args.hello, "rb") as f:
        wasm = f.read()
    component = os.path.join(tmp, f"hello-{i}-{time.time_ns()}.wasm")
    with open(component, "wb") as f:
        f.write(wasm + custom_section(b"verge-bench", str(time.time_ns()).encode()))
    return pack(args, tmp, "hello", component)


class Node:
    def __init__(self, args, data, extra=(), log=False):
        self.args, self.data = args, data
        self.port, self.admin = free_port(), free_port()
        env = dict(os.environ, VERGE_ADMIN_TOKEN=TOKEN, NO_COLOR="1")
        self.proc = subprocess.Popen(
            [args.verge, "node", "--data-dir", data, "--listen", f"127.0.0.1:{self.port}",
             "--admin-listen", f"127.0.0.1:{self.admin}", "--max-concurrent-per-service", "256",
             *extra],
            env=env, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(data + ".log"), "w") if log else subprocess.DEVNULL)
        wait_port(self.port, self.proc)
        wait_port(self.admin, self.proc)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=60)

    def call(self, method, path, body=None):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: {resp.status} {data[:300]!r}")
        return json.loads(data)

    def deploy(self, name, package):
        self.call("POST", "/admin/v1/services",
                  json.dumps({"name": name, "domains": [f"{name}.test"]}))
        number = self.call("POST", f"/admin/v1/services/{name}/versions", package)["number"]
        self.call("POST", f"/admin/v1/services/{name}/activate", json.dumps({"version": number}))

    def get(self, host):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", "/", headers={"Host": host})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp.status

    def rss_mib(self):
        return rss_kib(self.proc.pid) / 1024

    def stop(self):
        self.conn.close()
        stop(self.proc)


def wrk(port, host, duration, path="/", redirects=False):
    """Requests/s of `GET path` at -c32. Every answer must be 2xx, or with
    `redirects`, 3xx (checked with one request first, since wrk counts 3xx as
    non-2xx)."""
    import re
    url = f"http://127.0.0.1:{port}{path}"
    if redirects:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        if resp.status // 100 != 3:
            raise RuntimeError(f"GET {path} on {host}: {resp.status}, not a redirect")
    subprocess.run(["wrk", "-t1", "-c4", "-d1s", "-H", f"Host: {host}", url],
                   capture_output=True, check=True)
    out = subprocess.run(["wrk", "-t1", "-c32", f"-d{duration}s", "-H", f"Host: {host}", url],
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out and not redirects:
        raise RuntimeError(out)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--verge", required=True)
    p.add_argument("--hello", required=True, help="the SDK hello component")
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--deploys", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10)
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="verge-node-bench-")

    # 1. Deploy latency, compile included, on a warm node.
    node = Node(args, os.path.join(tmp, "deploys"))
    node.deploy("warmup", distinct_package(args, tmp, 0))
    assert node.get("warmup.test") == 200
    times = []
    for i in range(1, args.deploys + 1):
        package = distinct_package(args, tmp, i)
        start = time.perf_counter()
        name = f"d{i}"
        node.call("POST", "/admin/v1/services",
                  json.dumps({"name": name, "domains": [f"{name}.test"]}))
        number = node.call("POST", f"/admin/v1/services/{name}/versions", package)["number"]
        uploaded = time.perf_counter()
        node.call("POST", f"/admin/v1/services/{name}/activate", json.dumps({"version": number}))
        activated = time.perf_counter()
        status = node.get(f"{name}.test")
        done = time.perf_counter()
        assert status == 200, status
        times.append((done - start, uploaded - start, activated - uploaded, done - activated))
    # Memory of services with their own components, measured in a restarted node
    # (so no compiler memory is counted): before and after loading them.
    node.stop()
    node = Node(args, os.path.join(tmp, "deploys"))
    assert node.get("warmup.test") == 200
    rss_before = node.rss_mib()
    for i in range(1, args.deploys + 1):
        assert node.get(f"d{i}.test") == 200
    distinct_kib = (node.rss_mib() - rss_before) * 1024 / args.deploys
    node.stop()
    cap = max(1, args.deploys // 4)
    node = Node(args, os.path.join(tmp, "deploys"), ["--max-loaded-services", str(cap)])
    assert node.get("warmup.test") == 200
    rss_capped_before = node.rss_mib()
    for _ in range(2):
        for i in range(1, args.deploys + 1):
            assert node.get(f"d{i}.test") == 200
    capped_kib = (node.rss_mib() - rss_capped_before) * 1024
    node.stop()
    total = [t[0] * 1000 for t in times]
    print(f"deploy (upload+compile, activate, first request): median {statistics.median(total):.0f} ms, "
          f"worst {max(total):.0f} ms over {len(total)}")
    for part, index in (("upload+compile", 1), ("activate", 2), ("first request", 3)):
        print(f"  {part}: median {statistics.median(t[index] * 1000 for t in times):.1f} ms")
    print(f"  RSS per service with its own component (code not shared): {distinct_kib:.0f} KiB")
    print(f"  with --max-loaded-services {cap}, {args.deploys} such services requested twice over: "
          f"RSS grew {capped_kib / 1024:.1f} MiB")

    # 2-4. One service vs many.
    package = pack(args, tmp, "hello", os.path.abspath(args.hello))
    # Both nodes are measured restarted (nothing compiled in the process).
    one = Node(args, os.path.join(tmp, "one"))
    one.deploy("s0", package)
    one.stop()
    one = Node(args, os.path.join(tmp, "one"))
    assert one.get("s0.test") == 200
    one_rss = one.rss_mib()
    many_dir = os.path.join(tmp, "many")
    many = Node(args, many_dir)
    started = time.perf_counter()
    for i in range(args.services):
        many.deploy(f"s{i}", package)
    print(f"deployed {args.services} services in {time.perf_counter() - started:.1f} s; "
          f"RSS {many.rss_mib():.0f} MiB (every one loaded by its activation)")
    many.stop()
    many = Node(args, many_dir)
    idle_rss = many.rss_mib()
    firsts = []
    for i in range(0, args.services, max(1, args.services // 20)):
        start = time.perf_counter()
        assert many.get(f"s{i}.test") == 200
        firsts.append((time.perf_counter() - start) * 1000)
    warm = []
    for _ in range(20):
        start = time.perf_counter()
        assert many.get("s0.test") == 200
        warm.append((time.perf_counter() - start) * 1000)
    for i in range(args.services):
        assert many.get(f"s{i}.test") == 200
    loaded_rss = many.rss_mib()
    print(f"restarted {args.services}-service node: RSS {idle_rss:.0f} MiB with none loaded, "
          f"{loaded_rss:.0f} MiB with all loaded; one-service node {one_rss:.0f} MiB")
    print(f"  per service: {(idle_rss - one_rss) * 1024 / (args.services - 1):.0f} KiB routed, "
          f"{(loaded_rss - idle_rss) * 1024 / args.services:.0f} KiB more once loaded")
    print(f"first request to a service not loaded yet: median {statistics.median(firsts):.1f} ms, "
          f"worst {max(firsts):.1f} ms; a loaded one: median {statistics.median(warm):.2f} ms "
          f"(new connection each)")

    ratios = []
    for r in range(args.rounds):
        single = wrk(one.port, "s0.test", args.duration)
        multi = wrk(many.port, f"s{args.services // 2}.test", args.duration)
        ratios.append(multi / single)
        print(f"  round {r + 1}: one service {single:,.0f} req/s, one of {args.services} "
              f"{multi:,.0f} req/s, ratio {multi / single:.3f}")
    print(f"routing with {args.services} services / with 1: median ratio {statistics.median(ratios):.3f}")
    one.stop()
    many.stop()


if __name__ == "__main__":
    main()
