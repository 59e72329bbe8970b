"""Casing: word forms, sentence regimes, re-cased training and the robustness measures."""
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, ROOT
from model.casing import N_FORMS, REGIMES, sentence_regime, sentence_regimes, word_form
from model.tokenize import tokenize
from training.conll import Sentence, read_conll
from training.rawtext import detokenize, documents
from training.recase import recase
from training.train import TrainConfig


def regimes(*sentences):
    words = [s.split() for s in sentences]
    forms = np.array([word_form(w) for s in words for w in s])
    return [REGIMES[r] for r in sentence_regimes(forms, [len(s) for s in words])]


def test_the_regime_of_a_sentence_is_how_it_is_cased():
    assert regimes("Angela Merkel visited Paris .", "i love new york and barack obama",
                   "Going to see the yankees w/ mike", "EU REJECTS GERMAN CALL TO BOYCOTT BRITISH LAMB .",
                   "Obama Visits The Louvre In Paris", "Obama Visits the Louvre in Paris", "He said it was fine .",
                   "1996-08-30 , 3 2 1") == ["cased", "lower", "lower", "upper", "title", "title", "lower", "cased"]


def test_casing_rows_depend_on_the_sentence_regime(tiny_model):
    featurizer = tiny_model.featurizer
    assert featurizer.regimes and tiny_model.params["F_case"].shape[0] == 8 * len(REGIMES)
    cased, _ = featurizer.token_batch([["we", "met", "Paris"]])
    lower, _ = featurizer.token_batch([["we", "met", "paris"]])
    upper, _ = featurizer.token_batch([["WE", "MET", "PARIS"]])
    assert (cased["word"] == lower["word"]).all() and (lower["word"] == upper["word"]).all()
    assert len({tuple(cased["case"][:3]), tuple(lower["case"][:3]), tuple(upper["case"][:3])}) == 3
    assert lower["case"][1] != cased["case"][1]  # the same lower-case word, read against another regime


def test_recasing_keeps_every_word_length():
    words = ["Straße", "O'Neill", "U.S.", "1996-08-30", "ǅemal", "İstanbul"]
    for casing in ("lower", "upper", "title"):
        assert [len(w) for w in recase(words, casing)] == [len(w) for w in words]
    assert recase(["new", "YORK"], "title") == ["New", "York"]


def test_recase_shares_are_checked():
    assert TrainConfig().recase_shares()[0] == ["as-is", "lower", "upper", "title"]
    with pytest.raises(ValueError, match="unknown casings"):
        TrainConfig(recase={"sideways": 0.1}).recase_shares()
    with pytest.raises(ValueError, match="sum to at most 1"):
        TrainConfig(recase={"lower": 0.8, "upper": 0.3}).recase_shares()


def test_detokenized_text_puts_every_gold_span_on_its_words():
    text, offsets = detokenize(["He", "said", "(", "in", "Oslo", ")", ":", "Anna", "'s", "cost", "$", "5", "."])
    assert text == "He said (in Oslo): Anna's cost $5."
    sents, _ = read_conll(FIXTURES / "tiny_train.conll")
    for text, gold in documents(sents):
        for start, end, _ in gold:
            assert text[start:end] == text[start:end].strip() and text[start:end]
    docs = documents([Sentence(["TOKYO", "1996-08-30"], ["B-LOC", "O"], 0), Sentence(["Rain", "."], ["O", "O"], 0)])
    assert docs == [("TOKYO 1996-08-30\nRain.", {(0, 5, "LOC")})]
    assert [len(s) for s in tokenize(docs[0][0])] == [2, 2]


def test_evaluate_reports_every_casing_and_raw_text(tiny_model_dir):
    out = subprocess.run([sys.executable, "-m", "training.evaluate", "--model", str(tiny_model_dir), "--data",
                          str(FIXTURES / "tiny_dev.bio"), "--casing", "all", "--raw", "--json"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result["casing"]) == set(result["raw"]) == {"as-is", "lower", "upper", "title"}
    for kind in ("casing", "raw"):
        for scores in result[kind].values():
            assert 0.0 <= scores["overall"]["f1"] <= 1.0 and set(scores["per_type"]) <= {"PER", "LOC", "ORG", "MISC"}


def test_training_report_has_the_robustness_table(tiny_model_dir):
    manifest = json.loads((tiny_model_dir / "model.json").read_text())
    assert set(manifest["metrics"]["dev_by_casing"]) == {"as-is", "lower", "upper", "title"}
    html = (tiny_model_dir / "report" / "report.html").read_text()
    assert "Robustness" in html and html.count("raw text</td>") == 4


def test_a_budget_that_cuts_training_short_says_so(tmp_path):
    out = subprocess.run([sys.executable, "-m", "training.train", "--train", str(FIXTURES / "tiny_train.conll"),
                          "--dev", str(FIXTURES / "tiny_dev.bio"), "--out", str(tmp_path / "m"), "--embeddings",
                          str(FIXTURES / "vectors.txt"), "--hidden", "8", "--epochs", "5", "--max-seconds", "1e-9",
                          "--quiet"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "WARNING: --max-seconds" in out.stderr
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    assert manifest["training"]["epochs"] == 1 and manifest["training"]["cut_short_by_max_seconds"] is True


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.integers(0, N_FORMS - 1), min_size=1, max_size=8), min_size=1, max_size=6))
def test_one_sentence_and_many_follow_the_same_rule(sentences):
    forms = np.array([f for s in sentences for f in s])
    expected = [sentence_regime(s) for s in sentences]
    assert list(sentence_regimes(forms, [len(s) for s in sentences])) == expected
    if len(sentences) > 1:  # the batched path, and the single-sentence one for each sentence alone
        assert [sentence_regimes(np.array(s), [len(s)])[0] for s in sentences] == expected
