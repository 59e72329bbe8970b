"""predict over many texts: passes of whole sentences, and threads sharing one model."""
import threading

import pytest

from conftest import fixture_sentences
from model import predict as predict_module
from model.predict import annotate


def fixture_texts():
    """Texts of a few sentences each, rebuilt from the training fixture's words."""
    sentences = fixture_sentences()
    return ["\n".join(sentences[i: i + 3]) for i in range(0, len(sentences), 3)] + ["", "Oslo"]


def assert_same_answers(got, expected, tolerance):
    """Same entities and tokens; scores and probabilities equal to within ``tolerance``."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert [{k: v for k, v in x.items() if k != "score"} for x in g["entities"]] == \
               [{k: v for k, v in x.items() if k != "score"} for x in e["entities"]]
        assert all(abs(x["score"] - y["score"]) <= tolerance for x, y in zip(g["entities"], e["entities"]))
        assert [(t["text"], t["start"], t["end"], t["tag"]) for t in g.get("tokens", [])] == \
               [(t["text"], t["start"], t["end"], t["tag"]) for t in e.get("tokens", [])]
        for t, u in zip(g.get("tokens", []), e.get("tokens", [])):
            assert max(abs(t["probabilities"][k] - u["probabilities"][k]) for k in t["probabilities"]) <= tolerance


def test_passes_hold_whole_document_blocks_in_text_order():
    texts = fixture_texts()
    pieces = list(predict_module._passes(texts, 20))
    assert len(pieces) > 3
    # at most 20 tokens, but for a block alone (a short text is one block)
    assert all(sum(len(sent) for _, sent, _ in piece) <= 20 or len({b for _, _, b in piece}) == 1 for piece in pieces)
    flat = [(i, sent) for piece in pieces for i, sent, _ in piece]
    assert flat == [(i, sent) for i, t in enumerate(texts) for sent in predict_module.tokenize(t)]
    blocks = [b for piece in pieces for _, _, b in piece]
    assert blocks == sorted(blocks) and len(set(blocks)) == sum(1 for t in texts if predict_module.tokenize(t))


@pytest.mark.parametrize("options", [{}, {"tokens": False}, {"labels": ["PER"], "threshold": 0.3}])
def test_a_request_in_many_passes_answers_as_in_one(tiny_model, monkeypatch, options):
    texts = fixture_texts()
    whole, n_whole = annotate(texts, tiny_model, **options)
    monkeypatch.setattr(predict_module, "PASS_TOKENS", 7)
    pieces, n_pieces = annotate(texts, tiny_model, **options)
    assert n_pieces == n_whole > 7 * 5
    # Rows are grouped differently for the matrix products, so the last rounded digit may differ.
    assert_same_answers(pieces, whole, 2e-6)


def test_threads_sharing_a_model_get_the_answers_of_calls_one_by_one(tiny_model):
    texts = fixture_texts()
    requests = [texts[i % len(texts): i % len(texts) + 1 + i % 4] for i in range(24)]
    expected = [annotate(r, tiny_model) for r in requests]
    answers = {}

    def client(k):
        for i in range(k, len(requests), 4):
            answers[i] = annotate(requests[i], tiny_model)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [answers[i] for i in range(len(requests))] == expected


@pytest.mark.parametrize("columns", [["O"], ["PER", "O"], ["a'b", 'c"}d', "{e}", "ünï", "O"]])
def test_token_objects_hold_every_column_whatever_its_name(columns):
    tag_names = ["O", "B-x", "I-x"]
    build = predict_module.token_rows_builder(tag_names, columns)
    flat = [("Anna", 0, 4), ("sang", 5, 9)]
    rows = [[0.5 + i / 10 for i in range(len(columns))], [float(i) for i in range(len(columns))]]
    assert build(flat, [1, 0], rows) == [
        {"text": tok, "start": start, "end": end, "tag": tag_names[tag], "probabilities": dict(zip(columns, row))}
        for (tok, start, end), tag, row in zip(flat, [1, 0], rows)]
