"""Several models in one service: memory per worker, the default model's cost, and a candidate's.

    python benchmarks/several_models.py [--model models/default] [--duration 5] [--repeats 3]
                                        [--connections 16] [--mirrored 2000]

Servers are started as `make serve` starts nerve (2 gunicorn workers on 127.0.0.1), a fresh one per
measurement, in rounds of rotating order (benchmarks/harness.py), wrk the client:
- memory: each worker's resident and proportional set size (PSS counts a page shared by the two
  workers half to each) after every model has answered, with 1, 2 and 4 copies of the model in
  NERVE_MODELS, each under a name of its own;
- the default model's requests per second and CPU per request with 1 and 4 models served, and with
  and without a candidate (NERVE_CANDIDATE, share 0.1);
- latency at a load that leaves the machine room (2 connections, one per worker), with and
  without a candidate;
- the share mirrored over ``--mirrored`` requests sent one by one, against the setting.
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import harness  # noqa: E402

SENTENCE = ("Peter Blackburn of the European Commission said on Thursday in Brussels that German lamb "
            "exports to Britain rose by ten percent last year .")


def copies(model, folder, count, tag=""):
    """``count`` copies of ``model`` in ``folder``, named m1..mN (``tag`` added to the versions)."""
    os.makedirs(folder, exist_ok=True)
    for i in range(1, count + 1):
        dest = os.path.join(folder, f"m{i}")
        shutil.copytree(model, dest)
        path = os.path.join(dest, "model.json")
        with open(path) as f:
            manifest = json.load(f)
        manifest.update(name=f"m{i}", version=manifest["version"] + tag)
        with open(path, "w") as f:
            json.dump(manifest, f)
    return folder


def memory_kib(master_pid):
    """[(rss, pss)] in KiB of each worker."""
    out = []
    for pid in harness.subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True,
                                      text=True).stdout.split():
        fields = {}
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0].endswith(":"):
                    fields[parts[0][:-1]] = int(parts[1]) if parts[1].isdigit() else 0
        out.append((fields.get("Rss", 0), fields.get("Pss", 0)))
    return out


def post(port, body, path="/v1/ner"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status


def metric(port, name, **labels):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def memory(model, tmp, counts=(1, 2, 4)):
    out = {}
    for n in counts:
        folder = copies(model, os.path.join(tmp, f"mem{n}"), n)
        proc, port = harness.start(None, {"NERVE_MODELS": folder, "NERVE_MODEL": "m1"}, tmp)
        try:
            for _ in range(4):  # every model, on both workers
                for i in range(1, n + 1):
                    post(port, {"text": SENTENCE, "model": f"m{i}"})
            time.sleep(0.5)
            out[n] = memory_kib(proc.pid)
        finally:
            harness.stop([proc])
    return out


def mirrored_share(env, count, share, tmp):
    proc, port = harness.start(None, env, tmp)
    try:
        for i in range(count):
            post(port, {"text": SENTENCE if i % 2 else "Anna Berg flew to Oslo ."})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = sum(metric(port, "nerve_candidate_requests_total", result=r) for r in ("compared", "dropped"))
            if done >= int(count * share) - 2:
                break
            time.sleep(0.2)
        return {r: metric(port, "nerve_candidate_requests_total", result=r) for r in ("compared", "dropped", "failed")}
    finally:
        harness.stop([proc])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(harness.ROOT, "models", "default"))
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--mirrored", type=int, default=2000)
    parser.add_argument("--share", type=float, default=0.1)
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    body = {"text": SENTENCE}
    with tempfile.TemporaryDirectory() as tmp:
        one, four = copies(args.model, os.path.join(tmp, "one"), 1), copies(args.model, os.path.join(tmp, "four"), 4)
        candidate = copies(args.model, os.path.join(tmp, "cand"), 1, tag="-candidate")
        name = json.load(open(os.path.join(args.model, "model.json")))["name"]
        shutil.copytree(os.path.join(candidate, "m1"), os.path.join(tmp, "candidate"))
        with open(os.path.join(tmp, "candidate", "model.json")) as f:
            manifest = json.load(f)
        manifest["name"] = name
        with open(os.path.join(tmp, "candidate", "model.json"), "w") as f:
            json.dump(manifest, f)
        with_candidate = {"NERVE_MODEL": args.model, "NERVE_CANDIDATE": f"{name}={os.path.join(tmp, 'candidate')}",
                          "NERVE_CANDIDATE_SHARE": str(args.share)}
        targets = {"one model": (None, {"NERVE_MODEL": args.model}, body),
                   "NERVE_MODELS, 1 model": (None, {"NERVE_MODELS": one, "NERVE_MODEL": "m1"}, body),
                   "NERVE_MODELS, 4 models": (None, {"NERVE_MODELS": four, "NERVE_MODEL": "m1"}, body),
                   f"one model, candidate {args.share}": (None, with_candidate, body)}
        saturated = harness.rounds(targets, "one model", args.repeats, args.duration, args.connections, tmp)
        light_targets = {k: targets[k] for k in ("one model", f"one model, candidate {args.share}")}
        light = harness.rounds(light_targets, "one model", args.repeats, args.duration, 2, tmp)
        mem = memory(args.model, tmp)
        share = mirrored_share(with_candidate, args.mirrored, args.share, tmp)
    print(f"default model, {args.connections} connections, {args.duration} s x {args.repeats} rounds, 2 workers")
    for key, r in saturated.items():
        print(f"  {key:28s} {r['rps']:8.1f} req/s  x{1 / r['ratio']:.3f}  CPU {r['cpu_ms']:.3f} ms/req  "
              f"p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  non-2xx {r['non_2xx']}")
    print("2 connections (the machine not saturated)")
    for key, r in light.items():
        print(f"  {key:28s} {r['rps']:8.1f} req/s  CPU {r['cpu_ms']:.3f} ms/req  p50 {r['p50_ms']:.2f} ms  "
              f"p99 {r['p99_ms']:.2f} ms")
    print("memory per worker (RSS / PSS, MiB), every model warmed on both workers")
    for n, workers in mem.items():
        rss = statistics.mean(r for r, _ in workers) / 1024
        pss = statistics.mean(p for _, p in workers) / 1024
        print(f"  {n} model(s): RSS {rss:7.1f}  PSS {pss:7.1f}")
    per_model = (statistics.mean(r for r, _ in mem[4]) - statistics.mean(r for r, _ in mem[1])) / 3 / 1024
    print(f"  each model beyond the first: {per_model:.1f} MiB RSS per worker")
    mirrored = share["compared"] + share["dropped"]
    print(f"mirrored over {args.mirrored} requests: {mirrored / args.mirrored:.4f} (setting {args.share}); "
          f"compared {share['compared']:.0f}, dropped {share['dropped']:.0f}, failed {share['failed']:.0f}")


if __name__ == "__main__":
    main()
