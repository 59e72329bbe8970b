"""What a shard's documents are written as: the API's JSONL, CoNLL columns, or pre-annotations for
an annotation tool (doccano JSONL, Label Studio tasks with predictions), each span with its
calibrated score.

Every renderer takes (document id, text, the API's answer for the text) and returns the document's
part of the shard; ``shard`` joins them into the file.
"""
import json

import orjson

from model.predict import confidence
from model.tokenize import tokenize
from model.utf16 import Offsets

SUFFIX = {"jsonl": "jsonl", "conll": "conll", "doccano": "jsonl", "label-studio": "json"}
NEEDS_TOKENS = {"conll", "label-studio"}  # a CoNLL token's tag; a task's least sure token


def dumps(obj):
    """JSON text of ``obj`` (orjson, many times faster on the floats of an answer); text with lone
    surrogates, which a JSON record may carry and UTF-8 cannot, is written with escapes instead."""
    try:
        return orjson.dumps(obj).decode("utf-8")
    except TypeError:
        return json.dumps(obj)


def api_record(doc_id, text, result, tokens=False, **_):
    record = {"id": doc_id, "entities": result["entities"]}
    if tokens:
        record["tokens"] = result["tokens"]
    return dumps(record) + "\n"


def conll_document(doc_id, text, result, **_):
    """``-DOCSTART- id``, then a token and its IOB2 tag per line, a blank line after each sentence."""
    out, tokens = [f"-DOCSTART- {doc_id}\n\n"], iter(result["tokens"])
    for sentence in tokenize(text):
        for _ in sentence:
            token = next(tokens)
            out.append(f"{token['text']}\t{token['tag']}\n")
        out.append("\n")
    return "".join(out)


def doccano_record(doc_id, text, result, **_):
    """doccano's sequence-labelling import: ``text`` and ``label`` [[start, end, type]]; the other keys
    (id, scores: each span's, in the order of ``label``) become the document's metadata."""
    ents = result["entities"]
    return dumps({"id": doc_id, "text": text, "label": [[e["start"], e["end"], e["label"]] for e in ents],
                  "scores": [e["score"] for e in ents]}) + "\n"


def label_studio_task(doc_id, text, result, model_version="", confidence=None, **_):
    """A Label Studio task with one prediction (shown as pre-annotations for review). The labelling
    config is taken to be ``<Labels name="label" toName="text">`` over ``<Text name="text">``. The
    prediction's score is the text's least sure token's probability, so that sorting tasks by it
    puts what most needs a look first."""
    units = Offsets(text).to_units  # Label Studio counts offsets in UTF-16 code units
    spans = [{"id": f"s{i}", "from_name": "label", "to_name": "text", "type": "labels", "score": e["score"],
              "value": {"start": units(e["start"]), "end": units(e["end"]), "text": e["text"], "labels": [e["label"]]}}
             for i, e in enumerate(result["entities"])]
    prediction = {"model_version": model_version, "result": spans}
    if confidence is not None:
        prediction["score"] = confidence
    return dumps({"data": {"text": text, "id": doc_id}, "predictions": [prediction]})


RENDER = {"jsonl": api_record, "conll": conll_document, "doccano": doccano_record, "label-studio": label_studio_task}


def shard(output_format, parts):
    """The file of a shard's rendered documents: Label Studio imports one JSON array of tasks."""
    if output_format == "label-studio":
        return "[\n" + ",\n".join(parts) + "\n]\n"
    return "".join(parts)


def least_sure_sentences(text, result):
    """(confidence, sentence text, its entities with offsets in the sentence) per sentence:
    confidence is the probability of its least sure token's most likely type (calibrated)."""
    out, tokens = [], result["tokens"]
    entities, k, i = result["entities"], 0, 0
    for sentence in tokenize(text):
        rows = tokens[i: i + len(sentence)]
        i += len(sentence)
        start, end = sentence[0][1], sentence[-1][2]
        sure = confidence(rows)
        own = []
        while k < len(entities) and entities[k]["start"] < end:
            e = entities[k]
            own.append({**e, "start": e["start"] - start, "end": e["end"] - start})
            k += 1
        out.append((sure, text[start:end], own))
    return out
