"""Checking and training on a large span file: time and peak memory against its size.

    python benchmarks/own_data.py [--sentences 100000] [--epochs 1]

Writes the CoNLL-2003 training sentences, turned back into text (training.rawtext), as doccano
JSONL and as a Label Studio JSON export, cycled to ``--sentences`` sentences and to a tenth of
that; then runs ``python -m training.check`` on each file and ``python -m training.train`` on the
doccano files (``--epochs``, ``--skip-invalid``), each in its own process under GNU time, and
prints seconds and peak resident memory. Checking streams (its memory should not grow with the
file); training holds the token ids of the whole training set, as any epoch over it needs.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from model.decode import spans  # noqa: E402
from training.conll import read_conll  # noqa: E402
from training.rawtext import detokenize  # noqa: E402

CONLL = os.path.join(ROOT, "..", "shared", "data", "conll2003")


def records(sentences, n):
    """n doccano records, one sentence each, cycling through ``sentences``."""
    for i in range(n):
        s = sentences[i % len(sentences)]
        text, offsets = detokenize(s.words)
        yield {"id": i, "text": text,
               "label": [[offsets[first][0], offsets[last - 1][1], typ] for typ, first, last in spans(s.tags)]}


def write_files(sentences, n, folder):
    doccano, studio = os.path.join(folder, f"spans-{n}.jsonl"), os.path.join(folder, f"tasks-{n}.json")
    with open(doccano, "w", encoding="utf-8") as d, open(studio, "w", encoding="utf-8") as s:
        s.write("[\n")
        for r in records(sentences, n):
            d.write(json.dumps(r) + "\n")
            task = {"id": r["id"], "data": {"text": r["text"]}, "annotations": [{"result": [
                {"type": "labels", "value": {"start": a, "end": b, "labels": [t]}} for a, b, t in r["label"]]}]}
            s.write(("," if r["id"] else "") + json.dumps(task) + "\n")
        s.write("]\n")
    return doccano, studio


def timed(argv):
    """(seconds, peak MB, last output line) of a command run under GNU time."""
    out = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", *argv], capture_output=True, text=True, cwd=ROOT)
    line = [x for x in out.stderr.splitlines() if x.startswith("TIME ")][-1].split()
    tail = (out.stdout.strip().splitlines() or [""])[-1]
    return float(line[1]), int(line[2]) / 1024, tail


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(argv)
    sentences, _ = read_conll(os.path.join(CONLL, "train.txt"))
    py = os.path.join(ROOT, ".venv", "bin", "python")
    py = py if os.path.exists(py) else sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for n in (args.sentences // 10, args.sentences):
            doccano, studio = write_files(sentences, n, tmp)
            for path in (doccano, studio):
                mb = os.path.getsize(path) / 1e6
                seconds, peak, tail = timed([py, "-m", "training.check", path])
                rows.append((f"check {os.path.basename(path)}", n, mb, seconds, peak, tail))
            seconds, peak, _ = timed([py, "-m", "training.train", "--train", doccano, "--dev",
                                      os.path.join(CONLL, "valid.txt"), "--out", os.path.join(tmp, f"m{n}"),
                                      "--epochs", str(args.epochs), "--skip-invalid", "--quiet"])
            name = f"train {os.path.basename(doccano)}, {args.epochs} epoch(s)"
            rows.append((name, n, os.path.getsize(doccano) / 1e6, seconds, peak, ""))
    print(f"{'':42s} {'sentences':>10s} {'MB':>7s} {'seconds':>8s} {'peak MB':>8s}  check's verdict")
    for name, n, mb, seconds, peak, tail in rows:
        print(f"{name:42s} {n:10,d} {mb:7.1f} {seconds:8.1f} {peak:8.0f}  {tail}")


if __name__ == "__main__":
    main()
