"""Entity-level precision, recall and F1 as conlleval computes them (seqeval, default mode).

    python -m training.evaluate --model models/default --data valid.txt [--json]
"""
import argparse
import json
import sys
import time

from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from model.artifact import ArtifactError
from model.decode import to_iob2
from model.predict import Model
from training.conll import ConllError, read_conll


def predict_tags(model, sentences):
    """IOB2 tag lists the model assigns to each sentence's words (Viterbi decoded)."""
    tag_ids, _ = model.tag_sentences([s.words for s in sentences])
    return [to_iob2([model.labels[i] for i in ids]) for ids in tag_ids]


def entity_scores(gold, pred):
    """{"overall": {precision, recall, f1}, "per_type": {TYPE: {precision, recall, f1, support}}}."""
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    per_type = {
        typ: {"precision": float(r["precision"]), "recall": float(r["recall"]),
              "f1": float(r["f1-score"]), "support": int(r["support"])}
        for typ, r in report.items() if not typ.endswith(" avg")
    }
    overall = {"precision": float(precision_score(gold, pred, zero_division=0)),
               "recall": float(recall_score(gold, pred, zero_division=0)),
               "f1": float(f1_score(gold, pred, zero_division=0))}
    return {"overall": overall, "per_type": per_type}


def evaluate(model, sentences):
    """Scores of ``model`` on IOB2 ``sentences``, with counts and the seconds prediction took."""
    started = time.perf_counter()
    pred = predict_tags(model, sentences)
    seconds = time.perf_counter() - started
    result = entity_scores([s.tags for s in sentences], pred)
    result.update(sentences=len(sentences), tokens=sum(len(s.words) for s in sentences), seconds=seconds)
    return result


def format_scores(result):
    o = result["overall"]
    lines = [f"{'':8s} {'precision':>9s} {'recall':>9s} {'f1':>9s} {'support':>8s}"]
    for typ, r in sorted(result["per_type"].items()):
        lines.append(f"{typ:8s} {r['precision']:9.4f} {r['recall']:9.4f} {r['f1']:9.4f} {r['support']:8d}")
    lines.append(f"{'overall':8s} {o['precision']:9.4f} {o['recall']:9.4f} {o['f1']:9.4f}")
    lines.append(f"{result['sentences']} sentences, {result['tokens']} tokens, {result['seconds']:.2f} s")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Entity-level P/R/F1 of a model on a CoNLL file.")
    parser.add_argument("--model", required=True, help="model directory (holds model.json)")
    parser.add_argument("--data", required=True, help="CoNLL file to score against")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        model = Model.load(args.model)
        sentences, _ = read_conll(args.data)
    except (ArtifactError, ConllError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result = evaluate(model, sentences)
    print(json.dumps(result) if args.json else format_scores(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
