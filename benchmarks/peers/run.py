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
import sys
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as in the served workers: one BLAS thread each
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from benchmarks import harness  # noqa: E402
from benchmarks.peers import systems  # noqa: E402
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5)
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
    rows, targets = {}, {}
    for key, make, app, env in peers:
        system = make()
        row = {"name": system.name, "version": system.version, "f1": f1(gold, system.tag(words))}
        row.update(in_process(system, words, args.repeats))
        del system
        rows[key] = row
        targets[key] = (app, env, {"text": TEXT, "tokens": False} if key == "nerve" else {"text": TEXT})
        print(f"{row['name']:22s} F1 {row['f1']:.4f}  {row['batched_tok_s']:10,.0f} tok/s batched  "
              f"{row['call_ms']:7.2f} ms per call", flush=True)
    targets["nerve_tokens"] = (None, {}, {"text": TEXT})
    with tempfile.TemporaryDirectory() as tmp:
        results = harness.rounds(targets, "nerve", args.repeats, args.duration, args.connections, tmp)
    for key, r in results.items():
        if key in rows:
            rows[key]["served"] = r
            print(f"{rows[key]['name']:22s} served {r['rps']:8.1f} req/s  p99 {r['p99_ms']:7.2f} ms  "
                  f"CPU {r['cpu_ms']:.2f} ms/req  nerve ratio {r['ratio']:.1f}x")
    rows["nerve"]["served_tokens"] = results["nerve_tokens"]
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
        f"{args.connections} connections, {args.duration} s per measurement, {args.repeats} rounds in which every "
        "system is measured once (order rotating, a fresh server each time), one 25-token text per request; "
        "medians over the rounds, with "
        "the spread (max - min) of req/s. Ratio: median over rounds of nerve's req/s over the peer's in the same "
        "round. CPU ms: worker CPU time per request.",
        "",
        "| system | version | val F1 | tokens/s batched | ms per 25-token call | served req/s (spread) | "
        "p99 ms | CPU ms/req | nerve req/s ratio | nerve F1 - peer F1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows.values():
        s = r["served"]
        lines.append(f"| {r['name']} | {r['version']} | {r['f1']:.4f} | {r['batched_tok_s']:,.0f} | "
                     f"{r['call_ms']:.2f} | {s['rps']:,.1f} ({s['rps_spread']:,.1f}) | {s['p99_ms']:.2f} | "
                     f"{s['cpu_ms']:.2f} | {s['ratio']:.1f}x | {n['f1'] - r['f1']:+.4f} |")
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
