"""Two versions of the code serving one artifact, in one run: CPU per 25-token request and batched tokens/s.

    python benchmarks/code.py [--baseline REV] [--model models/default] [--rounds 7]

The baseline's ``model/`` and ``training/`` are taken from git history (``REV``) into a temporary
directory; the candidate is this tree. Each round runs one child process per version, in
alternating order (a noisy machine slows both alike), each loading the model, warming up, then
timing the measures of ``benchmarks/models.py``; the figures are medians over rounds.
"""
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.models import arguments  # noqa: E402

BASELINE = "a76d586"  # the code before one network and one forward pass

CHILD = r"""
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[5]]  # the version's model/ and training/, then this tree's benchmarks/
from benchmarks.models import one_round, warm_up, workload
from model.predict import Model
texts, batch = workload(sys.argv[3])
m = Model.load(sys.argv[2])
warm_up(m, texts)
one_round(m, texts, batch, 0)
print(json.dumps(dict(zip(["request", "batched"], one_round(m, texts, batch, int(sys.argv[4]))))))
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
    out = subprocess.run([sys.executable, "-c", CHILD, tree, model, data, str(round_), ROOT], capture_output=True,
                         text=True, check=True, env=env, cwd=tree)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    args = arguments(__doc__.splitlines()[0], BASELINE).parse_args(argv)
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
