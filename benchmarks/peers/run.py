"""nerve beside the peers users would pick instead, measured in one run on this machine.

    make bench-peers          (builds benchmarks/peers/.venv, then runs this)

Accuracy on the CoNLL-2003 validation split (entity-level, seqeval default mode = conlleval),
in-process throughput (batched over the split, and one 25-token call at a time), and served
throughput under the same gunicorn settings and the same wrk harness: req/s, p99 and CPU ms per
request. Medians over repeats, with the spread. Writes benchmarks/peers/RESULTS.md.
"""
import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from benchmarks.peers import systems  # noqa: E402
from benchmarks.serve import free_port, wrk  # noqa: E402
from training.conll import read_conll  # noqa: E402

SHARED = os.environ.get("NERVE_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
DATA = os.path.join(SHARED, "data", "conll2003")
TEXT = ("Peter Blackburn of the European Commission said on Thursday in Brussels that German lamb "
        "exports to Britain rose by ten percent last year .")


def f1(gold, pred):
    from seqeval.metrics import f1_score

    return f1_score(gold, pred)


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), max(times) - min(times)


def in_process(system, sentences, repeats):
    n_tokens = sum(len(s) for s in sentences)
    batched, spread = timed(lambda: system.tag(sentences), repeats)
    calls = 200
    single, _ = timed(lambda: [system.entities(TEXT) for _ in range(calls)], repeats)
    return {"batched_tok_s": n_tokens / batched, "batched_spread": n_tokens / (batched - spread / 2) - n_tokens /
            (batched + spread / 2) if spread else 0.0, "call_ms": single / calls * 1e3,
            "call_tok_s": 25 * calls / single}


def worker_cpu_seconds(master_pid):
    out = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout.split()
    total = 0
    for pid in out:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def served(app, env, body, args, tmp):
    port = free_port()
    full_env = {**os.environ, **env, "HOST": "127.0.0.1", "PORT": str(port), "NERVE_WORKERS": "2",
                "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": ROOT,
                "PROMETHEUS_MULTIPROC_DIR": os.path.join(tmp, f"m{port}"),
                "NERVE_STATE_DIR": os.path.join(tmp, f"s{port}")}
    argv = [os.path.join(ROOT, "deploy", "entrypoint.sh")] + ([app] if app else [])
    proc = subprocess.Popen(argv, env=full_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import urllib.request

        for _ in range(600):
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/ner", b'{"text": "warm up"}',
                                             {"Content-Type": "application/json"})
                urllib.request.urlopen(req, timeout=5).read()
                break
            except OSError:
                time.sleep(0.1)
        wrk(port, body, 2, args.connections, tmp)
        runs = []
        for _ in range(args.repeats):
            cpu0 = worker_cpu_seconds(proc.pid)
            r = wrk(port, body, args.duration, args.connections, tmp)
            r["cpu_ms"] = (worker_cpu_seconds(proc.pid) - cpu0) * 1e3 / max(r["rps"] * args.duration, 1)
            runs.append(r)
        return {"rps": statistics.median(r["rps"] for r in runs),
                "rps_spread": max(r["rps"] for r in runs) - min(r["rps"] for r in runs),
                "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                "cpu_ms": statistics.median(r["cpu_ms"] for r in runs),
                "non_2xx": sum(r["non_2xx"] for r in runs)}
    finally:
        proc.terminate()
        proc.wait(30)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--retrain-crf", action="store_true", help="ignore the cached CRF models")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    cache = os.path.join(HERE, ".cache")
    if args.retrain_crf:
        shutil.rmtree(cache, ignore_errors=True)
    train, _ = read_conll(os.path.join(DATA, "train.txt"))
    valid, _ = read_conll(os.path.join(DATA, "valid.txt"))
    words, gold = [s.words for s in valid], [s.tags for s in valid]

    peers = [("nerve", lambda: systems.Nerve(), None, {}),
             ("spacy", lambda: systems.Spacy(), "benchmarks.peers.app:app", {"PEER": "spacy"}),
             ("crf", lambda: systems.Crf(train, False, cache), "benchmarks.peers.app:app", {"PEER": "crf"}),
             ("crf_glove", lambda: systems.Crf(train, True, cache), "benchmarks.peers.app:app",
              {"PEER": "crf_glove"})]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, make, app, env in peers:
            system = make()
            row = {"name": system.name, "version": system.version, "f1": f1(gold, system.tag(words))}
            row.update(in_process(system, words, args.repeats))
            del system
            body = {"text": TEXT, "tokens": False} if key == "nerve" else {"text": TEXT}
            row["served"] = served(app, env, body, args, tmp)
            if key == "nerve":
                row["served_tokens"] = served(app, env, {"text": TEXT}, args, tmp)
            rows[key] = row
            print(f"{row['name']:22s} F1 {row['f1']:.4f}  {row['batched_tok_s']:10,.0f} tok/s batched  "
                  f"{row['call_ms']:7.2f} ms/call  served {row['served']['rps']:8.1f} req/s  "
                  f"p99 {row['served']['p99_ms']:7.2f} ms  CPU {row['served']['cpu_ms']:.2f} ms/req", flush=True)
    report = render(rows, args)
    with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
        f.write(report)
    print(report)


def render(rows, args):
    n = rows["nerve"]
    lines = [
        "# nerve beside its peers",
        "",
        f"Measured {datetime.date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, by `make bench-peers` (benchmarks/peers/run.py) in one run.",
        f"CoNLL-2003 English validation split; served: 2 gunicorn workers (deploy/gunicorn.conf.py), wrk, "
        f"{args.connections} connections, {args.duration} s x {args.repeats}, one 25-token text per request; "
        "medians, with the spread (max - min) of req/s. CPU ms: worker CPU time per request.",
        "",
        "| system | version | val F1 | tokens/s batched | ms per 25-token call | served req/s (spread) | "
        "p99 ms | CPU ms/req | nerve req/s ratio | nerve F1 - peer F1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows.values():
        s = r["served"]
        lines.append(f"| {r['name']} | {r['version']} | {r['f1']:.4f} | {r['batched_tok_s']:,.0f} | "
                     f"{r['call_ms']:.2f} | {s['rps']:,.1f} ({s['rps_spread']:,.1f}) | {s['p99_ms']:.2f} | "
                     f"{s['cpu_ms']:.2f} | {n['served']['rps'] / s['rps']:.1f}x | {n['f1'] - r['f1']:+.4f} |")
    t = n["served_tokens"]
    lines += ["", f"nerve with per-token probabilities in the answer (its default): {t['rps']:,.1f} req/s, "
              f"p99 {t['p99_ms']:.2f} ms, CPU {t['cpu_ms']:.2f} ms/req; the table's nerve row asks for entities "
              "only (`\"tokens\": false`), as the peers' endpoints return.",
              "spaCy: tokenizer + ner only (its ner has its own tok2vec); accuracy fed the gold tokens; OntoNotes "
              "labels mapped PERSON->PER; GPE, LOC, FAC->LOC; ORG->ORG; NORP, EVENT, WORK_OF_ART, LAW, LANGUAGE, "
              "PRODUCT->MISC; numeric types dropped.",
              "CRF: sklearn-crfsuite, L-BFGS, c1 = c2 = 0.1, 100 iterations, word shape, affixes, +-2 "
              "neighbours, no POS; the GloVe variant adds the 50-d vectors of the word and its +-1 neighbours.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
