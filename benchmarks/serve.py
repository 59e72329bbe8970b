"""Served throughput of nerve against a bare Flask endpoint under the same gunicorn settings, in one run.

    python benchmarks/serve.py [--duration 5] [--repeats 5] [--connections 16]

Needs wrk (Debian: apt-get install wrk). Servers are started exactly as `make serve` starts nerve
(deploy/entrypoint.sh, deploy/gunicorn.conf.py, 2 workers, 127.0.0.1), a fresh one per measurement,
in rounds of rotating order; ratios are medians of the per-round ratios. "nerve, model work taken
out" (benchmarks/model_free_app.py) answers every request with the answer to its first: the ceiling
for any speed-up of the model path.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import harness  # noqa: E402

SENTENCE = ("Peter Blackburn of the European Commission said on Thursday in Brussels that German lamb "
            "exports to Britain rose by ten percent last year .")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    targets = {"bare Flask": ("benchmarks.bare_app:app", {}, {"text": SENTENCE}),
               "nerve": (None, {}, {"text": SENTENCE}),
               "nerve, entities only": (None, {}, {"text": SENTENCE, "tokens": False}),
               "nerve, 64 sentences": (None, {}, {"texts": [SENTENCE] * 64}),
               "nerve, model work taken out": ("benchmarks.model_free_app:app", {}, {"text": SENTENCE})}
    with tempfile.TemporaryDirectory() as tmp:
        results = harness.rounds(targets, "bare Flask", args.repeats, args.duration, args.connections, tmp)
        # The cost of a request on its own, with no other request contending for the workers.
        alone = {}
        proc, port = harness.start(None, {}, tmp)
        try:
            for name in ("nerve", "nerve, 64 sentences"):
                harness.wrk(port, targets[name][2], 1, 1, tmp)
                alone[name] = statistics.median(harness.wrk(port, targets[name][2], args.duration, 1, tmp)["p50_ms"]
                                                for _ in range(3))
        finally:
            harness.stop([proc])
    print(f"{args.connections} connections, {args.duration} s x {args.repeats} rounds, 2 gunicorn workers, "
          "25-token text; medians over rounds")
    for name, r in results.items():
        print(f"  {name:28s} {r['rps']:9.1f} req/s (spread {r['rps_spread']:.1f})  p50 {r['p50_ms']:6.2f} ms  "
              f"p99 {r['p99_ms']:6.2f} ms  CPU {r['cpu_ms']:.3f} ms/req  non-2xx {r['non_2xx']}  redone {r['redone']}")
    for name in ("nerve", "nerve, entities only"):
        print(f"{name} / bare Flask req/s: {1 / results[name]['ratio']:.2f} (target >= 0.60)")
    print(f"nerve with the model's work taken out / bare Flask req/s: "
          f"{1 / results['nerve, model work taken out']['ratio']:.2f} (the most a faster model path could give)")
    cost = results["nerve, 64 sentences"]["cpu_ms"] / results["nerve"]["cpu_ms"]
    print(f"one 64-sentence request costs {cost:.1f} single requests in worker CPU under load, "
          f"{results['nerve']['rps'] / results['nerve, 64 sentences']['rps']:.1f} in req/s, and "
          f"{alone['nerve, 64 sentences'] / alone['nerve']:.1f} in latency on its own "
          f"({alone['nerve, 64 sentences']:.2f} ms vs {alone['nerve']:.2f} ms, 1 connection) (target < 15)")


if __name__ == "__main__":
    main()
