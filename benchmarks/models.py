"""Two artifacts side by side in one run: CPU per 25-token request and batched tokens/s.

    python benchmarks/models.py [--baseline git:REV | DIR] [--model models/default] [--rounds 7]

The baseline defaults to the shipped model (d40e206b0984 with the document cue at 0.25) as commit
abd01f1 holds it, taken from git history into a temporary directory, so that a candidate in
``--model DIR`` is compared with it. Rounds
alternate between the two models, so a noisy machine slows both alike; the figures are medians.
- request: a 25-token sentence of the validation split (a different one each call) through
  ``predict()``: tokenizer, features, forward pass, decoding, spans and token objects; CPU time.
- batched: 65,536 tokens of the validation split as one batch of sentences in their documents through
  ``Model.tag_flat``: features, forward pass, pooling, tag probabilities (a CRF's marginals), the
  document cue and the best tag paths; CPU time.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # after any tree already on the path: benchmarks/code.py runs older code with this
    sys.path.append(ROOT)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

from model import document  # noqa: E402
from model.predict import Model, predict  # noqa: E402
from training.conll import read_conll  # noqa: E402
from training.rawtext import detokenize  # noqa: E402

BASELINE = "git:abd01f1"  # models/default there: d40e206b0984 with the document cue at 0.25


def load_baseline(spec, tmp):
    if not spec.startswith("git:"):
        return Model.load(spec)
    archive = subprocess.run(["git", "-C", ROOT, "archive", spec[4:], "models/default"], capture_output=True,
                             check=True).stdout
    path = os.path.join(tmp, "baseline.tar")
    with open(path, "wb") as f:
        f.write(archive)
    with tarfile.open(path) as tar:
        tar.extractall(tmp, filter="data")
    return Model.load(os.path.join(tmp, "models", "default"))


def arguments(description, baseline):
    """The options this benchmark and ``benchmarks/code.py`` share."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--baseline", default=baseline)
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "default"))
    parser.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "conll2003", "valid.txt"))
    parser.add_argument("--rounds", type=int, default=7)
    return parser


def workload(data):
    """(25-token texts, then 65,536 tokens of sentences, their document blocks and token count)."""
    sentences = read_conll(data)[0]
    texts = [detokenize(s.words)[0] for s in sentences if 20 <= len(s.words) <= 30]
    words, docs, total = [], [], 0
    for s in sentences:
        words.append(s.words)
        docs.append(s.doc)
        total += len(s.words)
        if total >= 65536:
            break
    return texts, (words, document.blocks([len(w) for w in words], docs), total)


def warm_up(m, texts):
    """Caches of words, spellings and window positions filled, as in a serving process."""
    for text in texts[:300]:
        predict([text], m)


def one_round(m, texts, batch, r):
    """(CPU seconds per 25-token request, batched tokens per CPU second) of model m, round r."""
    words, blocks, total = batch
    chunk = texts[(r * 200) % len(texts):][:200]
    t0 = time.process_time()
    for text in chunk:
        predict([text], m)
    request = (time.process_time() - t0) / len(chunk)
    t0 = time.process_time()
    m.tag_flat(words, blocks=blocks)
    return request, total / (time.process_time() - t0)


def main(argv=None):
    args = arguments(__doc__.splitlines()[0], BASELINE).parse_args(argv)
    texts, batch = workload(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        models = {"baseline": load_baseline(args.baseline, tmp), "model": Model.load(args.model)}
        for name, m in models.items():
            print(f"{name:8s} {m.name} {m.version}: slot {m.config.slot_dim}, chars {m.config.chars}, "
                  f"regimes {m.config.case_regimes}")
            warm_up(m, texts)
        request = {name: [] for name in models}
        batched = {name: [] for name in models}
        for r in range(args.rounds):
            for name, m in (models.items() if r % 2 == 0 else reversed(models.items())):
                cpu, speed = one_round(m, texts, batch, r)
                request[name].append(cpu)
                batched[name].append(speed)
    for name in models:
        print(f"{name:8s} request {statistics.median(request[name]) * 1e3:.3f} ms CPU "
              f"(spread {(max(request[name]) - min(request[name])) * 1e3:.3f})  "
              f"batched {statistics.median(batched[name]):,.0f} tokens/s")
    cpu = statistics.median(request["model"]) / statistics.median(request["baseline"])
    speed = statistics.median(batched["model"]) / statistics.median(batched["baseline"])
    print(f"model / baseline: CPU per 25-token request {cpu:.2f}x, batched tokens/s {speed:.2f}x")
    # Each round's two models ran side by side: the median of their ratios, and the ratio of their
    # best rounds, are less moved by what else the machine runs than the ratio of medians.
    paired = statistics.median(m / b for m, b in zip(request["model"], request["baseline"]))
    paired_speed = statistics.median(m / b for m, b in zip(batched["model"], batched["baseline"]))
    print(f"per round: CPU per request {paired:.2f}x, batched {paired_speed:.2f}x; best rounds: "
          f"{min(request['model']) / min(request['baseline']):.2f}x, "
          f"{max(batched['model']) / max(batched['baseline']):.2f}x")


if __name__ == "__main__":
    main()
