"""Check annotation files before training: counts, spans per label, and every problem.

    python -m training.check FILE... [--format auto|conll|doccano|label-studio|spacy]

For each file: documents, sentences, tokens, spans per label, and each span or record that cannot
be used (with its file and line or task id, its text and the nearest token boundaries). Labels
found in a later file (dev) but not in the first (train) are named. Exit status 1 on any problem.
Files are read one document at a time: memory does not grow with the file.
"""
import argparse
import sys
from collections import Counter

from model.decode import spans
from training.conll import ConllError, detect_scheme, iter_conll
from training.spans import FORMATS, is_span_file, iter_spans, resolve_format


def sentence_batches(path, fmt):
    """(what the file is, an iterator of (sentences, problems) per document or sentence)."""
    if fmt == "conll" or (fmt == "auto" and not is_span_file(path)):
        return "conll", (([s], []) for s in iter_conll(path))
    fmt = resolve_format(path, fmt)
    return fmt, iter_spans(path, fmt)


def summary(path, fmt, report=print):
    """(report lines, labels, problem count) of one file; each problem is passed to ``report`` as found."""
    found, batches = sentence_batches(path, fmt)
    labels, docs, last_doc, n_sents, n_tokens, n_problems, scheme = Counter(), 0, None, 0, 0, 0, None
    for sentences, problems in batches:
        for s in sentences:
            docs += s.doc != last_doc  # a document's sentences come together
            last_doc = s.doc
            n_sents += 1
            n_tokens += len(s.words)
            labels.update(typ for typ, _, _ in spans(s.tags))
            if found == "conll" and scheme in (None, "IOB2"):
                scheme = detect_scheme([s.tags])
        for p in problems:
            report(f"  problem: {p}")
        n_problems += len(problems)
    if found == "conll":
        found = scheme or "IOB2"
    lines = [f"{path} ({found}): {docs} documents, {n_sents} sentences, {n_tokens} tokens, "
             f"{sum(labels.values())} spans"]
    lines += [f"  {label}: {n}" for label, n in sorted(labels.items())]
    return lines, set(labels), n_problems


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
