#!/usr/bin/env python3
"""The fleet benchmark (issue 17), loopback only, every run bounded.

NATS is `verge fleet dev --nodes 0` (the harness the tests use: 3 nats-servers with
JetStream, R3, sync_interval: always); the nodes are real `verge node` processes.
For each fleet size (3, 10, 30 nodes, one fresh prefix each):

1. deploy -> serving on every node: upload a hello package no node has compiled
   (the receiving node checks and compiles it; the others fetch and precompile it in
   the background), then activate; the activation answers once every live node
   serves it. Median and p99 of --deploys, compile included. With --code shared
   (the default) the nodes share compiled code (`--code-key`), so only the receiving
   node compiles; with --code own every node compiles each version itself; "both"
   measures one after the other.
2. activation of a precompiled version -> serving on every node: flip between two
   versions every node has compiled. Median and p99 of --deploys.
   Then purges through one node (everything of the service): the call answers once
   every live node applied it. Median and p99 of --deploys.
3. the nodes' total RSS.

Then, on the 3-node fleet:
4. requests/s of the hello service on a fleet node vs a single node (no fleet),
   wrk -c32, alternating rounds: the fleet adds nothing to the request path. The
   same for examples/url-shortener's redirect (a KV lookup per request: the fleet
   node's from its copy of the fleet's bucket, the single node's from its redb).
5. catch-up: one node paused (SIGSTOP) while 100 changes are made through another,
   then resumed: time until its heartbeat shows the latest revision.
6. idle cost of a fleet node with 1,000 services: RSS, and CPU over 30 s idle.
"""
import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import tempfile
import time

from http_bench import stop
from node_bench import TOKEN, Node, distinct_package, pack, wrk


def p99(values):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(0.99 * (len(values) - 1))))]


def start_nats(args, tmp):
    """`verge fleet dev --nodes 0`: the NATS URLs it prints, and the process. It
    writes the fleet's code key to nats/code-key."""
    log = open(os.path.join(tmp, "nats.log"), "w+")
    proc = subprocess.Popen(
        [args.verge, "fleet", "dev", "--nodes", "0", "--port-base", "0",
         "--dir", os.path.join(tmp, "nats")],
        env=dict(os.environ, NO_COLOR="1", VERGE_ADMIN_TOKEN=TOKEN),
        stdout=log, stderr=log)
    deadline = time.time() + 60
    while time.time() < deadline:
        log.seek(0)
        text = log.read()
        if "Fleet ready" in text:
            return re.search(r"NATS (nats://\S+)", text).group(1), proc
        if proc.poll() is not None:
            raise RuntimeError(text)
        time.sleep(0.1)
    raise RuntimeError("NATS did not start")


def fleet(args, tmp, urls, n, prefix, code_key=None):
    nodes = []
    for i in range(n):
        extra = ["--cluster", urls, "--cluster-prefix", prefix, "--node-name", f"n{i:02}"]
        if i == 0:
            extra.append("--cluster-init")
        if code_key:
            extra += ["--code-key", code_key]
        nodes.append(Node(args, os.path.join(tmp, f"{prefix}-{i}"), extra, log=True))
    return nodes


def activate(node, name, number, wait=30):
    answer = node.call("POST", f"/admin/v1/services/{name}/activate?wait={wait}",
                       json.dumps({"version": number}))
    return answer


def wait_all_live(node, n, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        live = [x for x in node.call("GET", "/admin/v1/nodes")["nodes"] if x["status"] == "live"]
        if len(live) >= n:
            return
        time.sleep(0.1)
    raise RuntimeError(f"only {len(live)} of {n} nodes live")


def deploys(args, tmp, nodes, mode):
    a = nodes[0]
    n = len(nodes)
    wait_all_live(a, n)
    a.call("POST", "/admin/v1/services", json.dumps({"name": "hello", "domains": ["hello.test"]}))
    first = a.call("POST", "/admin/v1/services/hello/versions", distinct_package(args, tmp, 0))
    activate(a, "hello", first["number"])
    deploy_ms, activation_ms = [], []
    for i in range(1, args.deploys + 1):
        package = distinct_package(args, tmp, i)
        start = time.perf_counter()
        number = a.call("POST", "/admin/v1/services/hello/versions", package)["number"]
        answer = activate(a, "hello", number)
        deploy_ms.append((time.perf_counter() - start) * 1000)
        bad = {k: v for k, v in answer["nodes"].items() if v != "serving"}
        if bad or len(answer["nodes"]) != n:
            raise RuntimeError(f"deploy {i}: {answer['nodes']}")
    # Two versions every node has compiled: the last two.
    last = number
    for i in range(args.deploys):
        target = last - 1 if i % 2 == 0 else last
        start = time.perf_counter()
        answer = activate(a, "hello", target)
        activation_ms.append((time.perf_counter() - start) * 1000)
        bad = {k: v for k, v in answer["nodes"].items() if v != "serving"}
        if bad or len(answer["nodes"]) != n:
            raise RuntimeError(f"activation {i}: {answer['nodes']}")
    # Purges through one node: the call answers once every live node applied it.
    purge_ms = []
    for i in range(args.deploys):
        start = time.perf_counter()
        answer = a.call("POST", "/admin/v1/services/hello/purge/all")
        purge_ms.append((time.perf_counter() - start) * 1000)
        bad = {k: v for k, v in answer["nodes"].items() if v != "applied"}
        if bad or len(answer["nodes"]) != n:
            raise RuntimeError(f"purge {i}: {answer['nodes']}")
    for node in nodes:
        assert node.get("hello.test") == 200
    rss = sum(node.rss_mib() for node in nodes)
    print(f"{n} nodes, {mode} code: deploy -> serving everywhere: median {statistics.median(deploy_ms):.0f} ms, "
          f"p99 {p99(deploy_ms):.0f} ms over {len(deploy_ms)}; "
          f"activation (precompiled): median {statistics.median(activation_ms):.1f} ms, "
          f"p99 {p99(activation_ms):.1f} ms; purge -> applied everywhere: "
          f"median {statistics.median(purge_ms):.1f} ms, p99 {p99(purge_ms):.1f} ms; "
          f"nodes' total RSS {rss:.0f} MiB "
          f"({rss / n:.0f} MiB each)", flush=True)


def cpu_seconds(pid):
    """utime + stime of `pid` (fields 14 and 15 of /proc/PID/stat), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pack_example(args, tmp, name):
    """The package of examples/NAME (built if needed)."""
    out = os.path.join(tmp, f"{name}.vpkg")
    subprocess.run([args.verge, "pack", "-o", out],
                   cwd=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", name),
                   check=True, capture_output=True)
    with open(out, "rb") as f:
        return f.read()


def shorten(port):
    """A link made through url-shortener on the node at `port`; its slug."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/shorten", body=json.dumps({"url": "https://example.com/bench"}),
                 headers={"Host": "links.test", "Content-Type": "application/json"})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    if resp.status != 201:
        raise RuntimeError(f"shortening: {resp.status} {body!r}")
    return json.loads(body)["slug"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--verge", required=True)
    p.add_argument("--hello", required=True, help="the SDK hello component")
    p.add_argument("--sizes", default="3,10,30")
    p.add_argument("--deploys", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--idle", type=int, default=30)
    p.add_argument("--code", choices=["shared", "own", "both"], default="shared",
                   help="whether the nodes share compiled code (--code-key)")
    p.add_argument("--steps", choices=["all", "deploys"], default="all",
                   help="deploys: only the deploy and activation figures (1-3)")
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="verge-fleet-bench-")
    print(f"state and node logs in {tmp}", flush=True)
    urls, nats = start_nats(args, tmp)
    try:
        code_key = os.path.join(tmp, "nats", "code-key")
        modes = ["own", "shared"] if args.code == "both" else [args.code]
        three = None
        for n in [int(s) for s in args.sizes.split(",")]:
            for mode in modes:
                nodes = fleet(args, tmp, urls, n, f"bench{n}{mode}",
                              code_key if mode == "shared" else None)
                try:
                    deploys(args, tmp, nodes, mode)
                except BaseException:
                    for node in nodes:
                        node.stop()
                    raise
                if n != 3 or three is not None:
                    for node in nodes:
                        node.stop()
                if n == 3 and three is None:
                    three = nodes
        if three is None or args.steps == "deploys":
            for node in three or []:
                node.stop()
            return

        # 4. The request path: a fleet node vs a single node, the same package.
        package = pack(args, tmp, "hello", os.path.abspath(args.hello))
        single = Node(args, os.path.join(tmp, "single"))
        single.deploy("hello", package)
        fleet_node = three[1]
        ratios = []
        for r in range(args.rounds):
            alone = wrk(single.port, "hello.test", args.duration)
            joined = wrk(fleet_node.port, "hello.test", args.duration)
            ratios.append(joined / alone)
            print(f"  round {r + 1}: fleet node {joined:.0f} req/s, single node {alone:.0f} req/s, "
                  f"ratio {joined / alone:.3f}", flush=True)
        print(f"requests/s on a fleet node / a single node: median {statistics.median(ratios):.3f}")
        shortener = pack_example(args, tmp, "url-shortener")
        # Fresh admin connections: the nodes closed the idle ones during the wrk rounds.
        for node in (single, fleet_node):
            node.conn = http.client.HTTPConnection("127.0.0.1", node.admin, timeout=60)
        single.deploy("links", shortener)
        fleet_node.deploy("links", shortener)
        slugs = {node.port: shorten(node.port) for node in (single, fleet_node)}
        ratios = []
        for r in range(args.rounds):
            alone = wrk(single.port, "links.test", args.duration, f"/{slugs[single.port]}", True)
            joined = wrk(fleet_node.port, "links.test", args.duration,
                         f"/{slugs[fleet_node.port]}", True)
            ratios.append(joined / alone)
            print(f"  round {r + 1}: url-shortener redirects: fleet node {joined:.0f} req/s, "
                  f"single node {alone:.0f} req/s, ratio {joined / alone:.3f}", flush=True)
        print(f"url-shortener requests/s on a fleet node / a single node: "
              f"median {statistics.median(ratios):.3f}")
        single.stop()

        # 5. Catch-up: a node paused while 100 changes are made. (Fresh admin
        # connections: the nodes closed the idle ones during the wrk rounds.)
        for node in three:
            node.conn = http.client.HTTPConnection("127.0.0.1", node.admin, timeout=60)
        a, c = three[0], three[2]
        os.kill(c.proc.pid, signal.SIGSTOP)
        for i in range(100):
            name = f"c{i}"
            a.call("POST", "/admin/v1/services", json.dumps({"name": name, "domains": []}))
        latest = a.call("GET", "/admin/v1/services/c99")["revision"]
        start = time.perf_counter()
        os.kill(c.proc.pid, signal.SIGCONT)
        while True:
            mine = [x for x in c.call("GET", "/admin/v1/nodes")["nodes"] if x["name"] == "n02"][0]
            if mine["applied_revision"] >= latest:
                break
            if time.perf_counter() - start > 60:
                raise RuntimeError("no catch-up within 60 s")
            time.sleep(0.005)
        print(f"catch-up of a node paused during 100 changes: {(time.perf_counter() - start) * 1000:.0f} ms "
              f"after it resumed")

        # 6. Idle cost with 1,000 services.
        b = three[1]
        started = time.perf_counter()
        for i in range(args.services):
            name = f"s{i}"
            b.call("POST", "/admin/v1/services", json.dumps({"name": name, "domains": [f"{name}.test"]}))
            b.call("POST", f"/admin/v1/services/{name}/versions", package)
            activate(b, name, 1, wait=0)
        print(f"  {args.services} services deployed through one node in "
              f"{time.perf_counter() - started:.1f} s")
        wait_all_live(b, 3)
        time.sleep(5)
        before = cpu_seconds(b.proc.pid)
        time.sleep(args.idle)
        cpu = cpu_seconds(b.proc.pid) - before
        print(f"idle fleet node with {args.services} services: RSS {b.rss_mib():.0f} MiB, "
              f"CPU {cpu / args.idle * 100:.2f} % of a core over {args.idle} s")
        for node in three:
            node.stop()
    finally:
        stop(nats)


if __name__ == "__main__":
    main()
