"""Check annotation files before training: counts, spans per label, and every problem.

    python -m training.check FILE... [--format auto|conll|doccano|label-studio|spacy]

For each file: documents, sentences, tokens, spans per label, and each span or record that cannot
be used (with its file and line or task id, its text and the nearest token boundaries). Labels
found in a later file (dev) but not in the first (train) are named. Exit status 1 on any problem.
"""
import argparse
import sys
from collections import Counter

from model.decode import spans
from training.conll import ConllError, read_conll
from training.spans import FORMATS, is_span_file, read_spans


def summary(path, fmt):
    """(report lines, labels, problem count) of one file."""
    if fmt == "conll" or (fmt == "auto" and not is_span_file(path)):
        sentences, found = read_conll(path)
        problems = []
    else:
        sentences, found, problems = read_spans(path, fmt)
    labels = Counter(typ for s in sentences for typ, _, _ in spans(s.tags))
    docs = len({s.doc for s in sentences})
    lines = [f"{path} ({found}): {docs} documents, {len(sentences)} sentences, "
             f"{sum(len(s.words) for s in sentences)} tokens, {sum(labels.values())} spans"]
    lines += [f"  {label}: {n}" for label, n in sorted(labels.items())]
    lines += [f"  problem: {p}" for p in problems]
    return lines, set(labels), len(problems)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--format", choices=["auto", "conll", *FORMATS], default="auto")
    args = parser.parse_args(argv)
    total, first_labels = 0, None
    for path in args.files:
        try:
            lines, labels, problems = summary(path, args.format)
        except (ConllError, OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            total += 1
            continue
        print("\n".join(lines))
        total += problems
        if first_labels is None:
            first_labels = labels
        elif labels - first_labels:
            print(f"  labels not in {args.files[0]}: {', '.join(sorted(labels - first_labels))}")
            total += 1
    print(f"{total} problem(s)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
