"""Entity-level precision, recall and F1 as conlleval computes them (seqeval, default mode).

    python -m training.evaluate --model models/default --data valid.txt [--casing all] [--raw] [--json]

``--casing`` scores the words re-cased one by one (lower, upper, title; ``all`` for every casing);
``--raw`` also scores the text as users send it: the sentences turned back into ordinary text,
tokenized and split by the service itself, entities matched by exact character spans;
``--sentences-alone`` reads each sentence as a text of its own, as a request of one sentence is.
"""
import argparse
import json
import sys
import time

from seqeval.metrics import classification_report

from model.artifact import ArtifactError
from model.decode import to_iob2
from model.predict import Model
from training.conll import ConllError, Sentence
from training.rawtext import raw_scores
from training.recase import CASINGS, recase
from training.spans import FORMATS, read_data


def predict_tags(model, sentences, alone=False):
    """IOB2 tag lists the model assigns to each sentence's words (Viterbi decoded), read with their
    documents (pooling, the document cue), or with ``alone`` each as a text of its own."""
    docs = list(range(len(sentences))) if alone else [s.doc for s in sentences]
    tag_ids, _ = model.tag_sentences([s.words for s in sentences], docs)
    return [to_iob2([model.labels[i] for i in ids]) for ids in tag_ids]


def entity_scores(gold, pred):
    """{"overall": {precision, recall, f1}, "per_type": {TYPE: {precision, recall, f1, support}}}."""
    # One pass of seqeval: its micro average is the overall score conlleval reports.
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    per_type = {
        typ: {"precision": float(r["precision"]), "recall": float(r["recall"]),
              "f1": float(r["f1-score"]), "support": int(r["support"])}
        for typ, r in report.items() if not typ.endswith(" avg")
    }
    micro = report["micro avg"]
    overall = {"precision": float(micro["precision"]), "recall": float(micro["recall"]), "f1": float(micro["f1-score"])}
    return {"overall": overall, "per_type": per_type}


def only(tags, types):
    """IOB2 tags with the entities of other types made O."""
    return [t if t == "O" or t[2:] in types else "O" for t in tags]


def evaluate(model, sentences, types=None, alone=False):
    """Scores of ``model`` on IOB2 ``sentences``, with counts and the seconds prediction took; with
    ``types``, of those entity types only (the model's other types and the data's are set aside);
    with ``alone``, each sentence read as a text of its own."""
    started = time.perf_counter()
    pred = predict_tags(model, sentences, alone)
    seconds = time.perf_counter() - started
    gold = [s.tags for s in sentences]
    if types is not None:
        gold, pred = [only(t, types) for t in gold], [only(t, types) for t in pred]
    result = entity_scores(gold, pred)
    result.update(sentences=len(sentences), tokens=sum(len(s.words) for s in sentences), seconds=seconds)
    return result


def recased(sentences, casing):
    return [Sentence(recase(s.words, casing), s.tags, s.doc) for s in sentences]


def robustness(model, sentences, casings=CASINGS, raw=False):
    """{casing: scores of the sentences re-cased that way}; with ``raw``, {casing: raw-text scores} too."""
    out = {"casing": {c: evaluate(model, recased(sentences, c)) for c in casings}}
    if raw:
        out["raw"] = {c: raw_scores(model, recased(sentences, c)) for c in casings}
    return out


def format_scores(result):
    o = result["overall"]
    lines = [f"{'':8s} {'precision':>9s} {'recall':>9s} {'f1':>9s} {'support':>8s}"]
    for typ, r in sorted(result["per_type"].items()):
        lines.append(f"{typ:8s} {r['precision']:9.4f} {r['recall']:9.4f} {r['f1']:9.4f} {r['support']:8d}")
    lines.append(f"{'overall':8s} {o['precision']:9.4f} {o['recall']:9.4f} {o['f1']:9.4f}")
    if "sentences" in result:
        lines.append(f"{result['sentences']} sentences, {result['tokens']} tokens, {result['seconds']:.2f} s")
    else:
        lines.append(f"{result['documents']} documents as raw text, exact character spans")
    return "\n".join(lines)


def format_robustness(result):
    blocks = []
    for kind, title in (("casing", "tokens"), ("raw", "raw text")):
        for casing, scores in result.get(kind, {}).items():
            blocks.append(f"== {casing}, {title}\n{format_scores(scores)}")
    return "\n\n".join(blocks)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Entity-level P/R/F1 of a model on a CoNLL file.")
    parser.add_argument("--model", required=True, help="model directory (holds model.json)")
    parser.add_argument("--data", required=True, help="CoNLL file to score against")
    parser.add_argument("--casing", choices=[*CASINGS, "all"],
                        help="re-case every word before scoring (all: each casing in turn)")
    parser.add_argument("--raw", action="store_true",
                        help="also score the data turned back into text, through the service's tokenizer")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--sentences-alone", action="store_true",
                        help="read each sentence as a text of its own (as requests of one sentence are), not in "
                        "its document")
    parser.add_argument("--types", help="score only these entity types (comma-separated), e.g. the types a "
                        "fine-tuned model had before")
    parser.add_argument("--format", choices=["auto", "conll", *FORMATS], default="auto",
                        help="data format (auto: CoNLL columns, or a span file by its content)")
    args = parser.parse_args(argv)
    try:
        model = Model.load(args.model)
        sentences, _ = read_data(args.data, args.format)
    except (ArtifactError, ConllError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    types = set(args.types.split(",")) if args.types else None
    if args.casing is None and not args.raw:
        result = evaluate(model, sentences, types, args.sentences_alone)
        print(json.dumps(result) if args.json else format_scores(result))
        return 0
    if types is not None or args.sentences_alone:
        parser.error("--types and --sentences-alone score the data as given: not with --casing or --raw")
    casings = CASINGS if args.casing == "all" else [args.casing or "as-is"]
    result = robustness(model, sentences, casings, raw=args.raw)
    print(json.dumps(result) if args.json else format_robustness(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
