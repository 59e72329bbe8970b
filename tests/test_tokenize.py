from hypothesis import given, settings
from hypothesis import strategies as st

from model.tokenize import tokenize


def words(text):
    return [tok for sent in tokenize(text) for tok, _, _ in sent]


def test_splits_punctuation_and_possessives_like_conll():
    assert words("Peter Blackburn's dog didn't bark.") == \
        ["Peter", "Blackburn", "'s", "dog", "did", "n't", "bark", "."]


def test_keeps_hyphenated_words_numbers_and_abbreviations_whole():
    assert words("The U.S. Anglo-Dutch firm paid 1,000.50 on 1996-08-22 to O'Neill") == \
        ["The", "U.S.", "Anglo-Dutch", "firm", "paid", "1,000.50", "on", "1996-08-22", "to", "O'Neill"]


def test_sentences_end_at_final_punctuation_and_line_breaks():
    sents = tokenize("Rain in Oslo. Sun in Lima!\nBRUSSELS 1996-08-22")
    assert [[t for t, _, _ in s] for s in sents] == [
        ["Rain", "in", "Oslo", "."], ["Sun", "in", "Lima", "!"], ["BRUSSELS", "1996-08-22"]]


def test_offsets_are_code_points_not_bytes():
    text = "Zoë met 東京 🙂 Ansgar"
    for sent in tokenize(text):
        for tok, start, end in sent:
            assert text[start:end] == tok
    assert words(text) == ["Zoë", "met", "東京", "🙂", "Ansgar"]


def test_empty_and_whitespace_only_text_has_no_tokens():
    assert tokenize("") == []
    assert tokenize(" \t\n\u3000 ") == []


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=200))
def test_offsets_always_slice_back_and_cover_every_non_space(text):
    tokens = [t for sent in tokenize(text) for t in sent]
    covered = set()
    last = 0
    for tok, start, end in tokens:
        assert text[start:end] == tok
        assert tok and start >= last
        last = end
        covered.update(range(start, end))
    assert all(ch.isspace() for i, ch in enumerate(text) if i not in covered)


def test_a_100k_character_token_is_one_token():
    text = "a" * 100_000 + " n't"
    assert [(s, e) for sent in tokenize(text) for _, s, e in sent] == [(0, 100_000), (100_001, 100_004)]


def test_space_around_the_text_only_moves_the_offsets():
    assert tokenize("\n  Mr. Smith left .  \t") == [[("Mr.", 3, 6), ("Smith", 7, 12), ("left", 13, 17), (".", 18, 19)]]
    assert tokenize("See Mr.") == [[("See", 0, 3), ("Mr", 4, 6), (".", 6, 7)]]


def test_urls_emails_mentions_and_hashtags_are_single_tokens():
    text = "mail john.smith@ibm.com or see https://nerve.example/a?b=1&c=%20, www.bbc.co.uk. @mike #NewYork!"
    assert words(text) == ["mail", "john.smith@ibm.com", "or", "see", "https://nerve.example/a?b=1&c=%20", ",",
                           "www.bbc.co.uk", ".", "@mike", "#NewYork", "!"]
    assert len(tokenize("write to john.smith@ibm.com today")) == 1  # no sentence ends inside the address


def test_initials_currencies_and_company_abbreviations_read_as_in_news():
    assert words("M. Gatting 83, paid C$ 0.28 to US$5") == ["M.", "Gatting", "83", ",", "paid", "C$", "0.28", "to",
                                                           "US$", "5"]
    sents = tokenize("He joined Lear Corp. Family firms sold Norwest Corp., Fla., shares.")
    assert [[t for t, _, _ in s] for s in sents] == [
        ["He", "joined", "Lear", "Corp", "."], ["Family", "firms", "sold", "Norwest", "Corp.", ",", "Fla.", ",",
                                               "shares", "."]]


def test_a_sentence_keeps_its_repeated_marks_and_closing_quote():
    sents = tokenize('just landed in nyc!! going "home." Then "we" left')
    assert [[t for t, _, _ in s] for s in sents] == [
        ["just", "landed", "in", "nyc", "!", "!"], ["going", '"', "home", ".", '"'], ["Then", '"', "we", '"', "left"]]


_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
_address = st.one_of(
    st.builds(lambda a, b, c: f"{a}.{b}@{c}.com", _label, _label, _label),
    st.builds(lambda s, a, b, p: f"{s}://{a}.{b}/{p}", st.sampled_from(["http", "https"]), _label, _label, _label),
    st.builds(lambda a, b: f"www.{a}.{b}", _label, st.sampled_from(["org", "co.uk", "de"])),
    st.builds(lambda m, a: f"{m}{a}", st.sampled_from(["@", "#"]), _label),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="ab ,.!?()'\"", max_size=6), min_size=2, max_size=2), _address,
       st.sampled_from(["", ".", ",", "!", ")", "?"]))
def test_an_address_in_any_text_is_one_token_with_exact_offsets(around, address, mark):
    text = f"{around[0]} {address}{mark} {around[1]}"
    start = len(around[0]) + 1
    found = [(tok, s, e) for sent in tokenize(text) for tok, s, e in sent if s <= start < e]
    assert found == [(address, start, start + len(address))]


def test_hostile_runs_of_address_characters_stay_linear():
    for text in ("a." * 50_000, "a@" * 50_000, "www." * 25_000, "http://" + "." * 100_000, "1." * 50_000,
                 "C$" * 50_000, "x" * 64 + "@" + "a." * 50_000):
        tokens = [t for sent in tokenize(text) for t in sent]
        assert "".join(tok for tok, _, _ in tokens) == text
