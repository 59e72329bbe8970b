"""The shipped model on text as users send it: lower-case, capitals, Title Case, addresses."""
import pytest

from conftest import DEFAULT_MODEL, conll_split
from model.predict import Model, predict
from training.conll import read_conll
from training.evaluate import robustness


@pytest.fixture(scope="module")
def shipped():
    return Model.load(str(DEFAULT_MODEL))


def entities(model, text):
    return {(e["text"], e["label"]) for e in predict([text], model, tokens=False)[0]["entities"]}


@pytest.mark.parametrize("text, expected", [
    pytest.param("i love new york and barack obama", {("new york", "LOC"), ("barack obama", "PER")},
                 marks=pytest.mark.xfail(strict=True, reason=(
                     "a lower-case name the public lists lack: gazetteer models find fewer of them "
                     "(docs/dictionaries.md); a dictionary entry finds it (the test below)"))),
    ("just landed in london, meeting angela merkel tomorrow", {("london", "LOC"), ("angela merkel", "PER")}),
    ("microsoft is hiring engineers in berlin", {("microsoft", "ORG"), ("berlin", "LOC")}),
    ("did you watch the game between brazil and germany", {("brazil", "LOC"), ("germany", "LOC")}),
    ("TONY BLAIR ARRIVES IN WASHINGTON FOR TALKS", {("TONY BLAIR", "PER"), ("WASHINGTON", "LOC")}),
    ("Police Arrest Man In Madrid After Chase", {("Madrid", "LOC")}),
])
def test_finds_the_entities_of_text_in_any_casing(shipped, text, expected):
    assert expected <= entities(shipped, text)


def test_a_lower_case_name_the_lists_lack_is_found_once_a_dictionary_lists_it():
    from model.dictionary import Dictionary

    model = Model.load(str(DEFAULT_MODEL))
    text = "i love new york and barack obama"
    assert ("barack obama", "PER") not in entities(model, text)
    model.use_dictionary(Dictionary.parse(b'{"label": "PER", "pattern": "Barack Obama"}\n'))
    assert {("new york", "LOC"), ("barack obama", "PER")} <= entities(model, text)


@pytest.mark.parametrize("text", [
    "write to john.smith@ibm.com or see https://www.reuters.com/world/europe today",
    "Contact Jeffrey.Hodgson@Reuters.com, or visit www.Microsoft.com/en-us for details.",
    "MAIL PRESS@BBC.CO.UK OR HTTP://BBC.CO.UK/NEWS",
])
def test_urls_and_email_addresses_are_never_entities(shipped, text):
    result = predict([text], shipped)[0]
    addresses = [t for t in result["tokens"] if "@" in t["text"] or "." in t["text"][1:-1]]
    assert addresses and all(t["tag"] == "O" and t["probabilities"]["O"] == 1.0 for t in addresses)
    assert not any("@" in e["text"] or "/" in e["text"] for e in result["entities"])


def test_shipped_model_keeps_its_accuracy_in_every_casing_and_on_raw_text(shipped):
    sentences, _ = read_conll(conll_split("valid"))
    result = robustness(shipped, sentences, raw=True)
    f1 = {casing: r["overall"]["f1"] for casing, r in result["casing"].items()}
    assert f1["as-is"] >= 0.93 and f1["lower"] >= 0.88 and f1["upper"] >= 0.87 and f1["title"] >= 0.86
    assert result["raw"]["as-is"]["overall"]["f1"] >= f1["as-is"] - 0.005
