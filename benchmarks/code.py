"""Two versions of the code serving one artifact, in one run: CPU per 25-token request and batched tokens/s.

    python benchmarks/code.py [--baseline REV] [--model models/default] [--rounds 7]

The baseline's ``model/`` and ``training/`` are taken from git history (``REV``) into a temporary
directory; the candidate is this tree. Each round runs one child process per version, in
alternating order (a noisy machine slows both alike), each loading the model, warming up, then
timing the measures of ``benchmarks/models.py``; the figures are medians over rounds.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = "a76d586"  # the code before one network and one forward pass

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from model import document
from model.predict import Model, predict
from training.conll import read_conll
from training.rawtext import detokenize
sentences = read_conll(sys.argv[3])[0]
texts = [detokenize(s.words)[0] for s in sentences if 20 <= len(s.words) <= 30]
words, docs, total = [], [], 0
for s in sentences:
    words.append(s.words); docs.append(s.doc); total += len(s.words)
    if total >= 65536:
        break
blocks = document.blocks([len(w) for w in words], docs)
m = Model.load(sys.argv[2])
for text in texts[:300]:
    predict([text], m)
m.tag_flat(words, blocks=blocks)
chunk = texts[(int(sys.argv[4]) * 200) % len(texts):][:200]
t0 = time.process_time()
for text in chunk:
    predict([text], m)
request = (time.process_time() - t0) / len(chunk)
runs = []
for _ in range(3):
    t0 = time.process_time()
    m.tag_flat(words, blocks=blocks)
    runs.append(total / (time.process_time() - t0))
print(json.dumps({"request": request, "batched": sorted(runs)[1]}))
"""


def extract(rev, tmp):
    archive = subprocess.run(["git", "-C", ROOT, "archive", rev, "model", "training"], capture_output=True,
                             check=True).stdout
    path = os.path.join(tmp, "code.tar")
    with open(path, "wb") as f:
        f.write(archive)
    with tarfile.open(path) as tar:
        tar.extractall(os.path.join(tmp, "tree"), filter="data")
    return os.path.join(tmp, "tree")


def measure(tree, model, data, round_):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH="")
    out = subprocess.run([sys.executable, "-c", CHILD, tree, model, data, str(round_)], capture_output=True,
                         text=True, check=True, env=env, cwd=tree)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "default"))
    parser.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "conll2003", "valid.txt"))
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    model, data = os.path.abspath(args.model), os.path.abspath(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"baseline": extract(args.baseline, tmp), "code": ROOT}
        results = {name: [] for name in trees}
        for r in range(args.rounds):
            for name in (trees if r % 2 == 0 else reversed(list(trees))):
                results[name].append(measure(trees[name], model, data, r))
    med = {name: {k: statistics.median(x[k] for x in rs) for k in ("request", "batched")}
           for name, rs in results.items()}
    for name, m in med.items():
        print(f"{name:8s} request {m['request'] * 1e3:.3f} ms CPU, batched {m['batched']:,.0f} tokens/s")
    print(f"code / baseline ({args.baseline}): CPU per 25-token request "
          f"{med['code']['request'] / med['baseline']['request']:.2f}x, batched tokens/s "
          f"{med['code']['batched'] / med['baseline']['batched']:.2f}x")


if __name__ == "__main__":
    main()
