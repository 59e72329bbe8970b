"""Span-annotated text, as annotation tools export it, mapped onto the service's own tokenizer.

Formats (detected from the content, or forced):
- ``doccano``: JSONL, ``{"text": ..., "label": [[start, end, "TYPE"], ...]}`` (older exports: ``labels``;
  projects with relations: ``entities`` [{"start_offset", "end_offset", "label"}]);
- ``label-studio``: a JSON list of tasks, ``data.text`` and ``annotations[].result[].value{start, end,
  labels}``; cancelled annotations are skipped, and of several the last one updated is read; a
  task without annotations is read from its predictions (pre-annotations, as ``python -m bulk
  --format label-studio`` writes them); the text may be under another name than ``text`` when it
  is the task's only string; the JSON-MIN export (per task its text, and under the labelling
  control's name a list of {start, end, labels}) is read too;
- ``spacy``: JSONL, ``{"text": ..., "spans": [{"start", "end", "label"}, ...]}`` (spaCy, Prodigy).
Offsets are code points (Label Studio's, counted in UTF-16 code units, are converted). Each span
must start and end on the service's token boundaries, so that what is trained is what is served;
spans that do not, overlap, run past the text or have no label are problems, reported with their
file and line (or task id), their text and the nearest token boundaries. Sentences a span runs
across are joined into one.
"""
import json
from dataclasses import dataclass

from model.decode import iob2_tags
from model.tokenize import tokenize
from model.utf16 import Offsets
from training.conll import ConllError, Sentence

FORMATS = ("doccano", "label-studio", "spacy")


@dataclass
class Problem:
    where: str
    message: str

    def __str__(self):
        return f"{self.where}: {self.message}"


def detect(path):
    """The format of a span file, from its first record."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                break
        else:
            raise ConllError(f"{path}: empty file")
    if line.lstrip().startswith("["):
        return "label-studio"
    try:
        first = json.loads(line)
    except json.JSONDecodeError:
        return None
    if isinstance(first, dict) and "spans" in first:
        return "spacy"
    if isinstance(first, dict) and ("label" in first or "labels" in first or "entities" in first):
        return "doccano"
    return None


def json_array_items(path, chunk=1 << 16):
    """The items of a file holding one JSON array, one at a time: memory holds one item, not the file."""
    decoder = json.JSONDecoder()
    with open(path, encoding="utf-8") as f:
        buf, pos, eof, opened = "", 0, False, False
        while True:
            while pos < len(buf) and (buf[pos].isspace() or (opened and buf[pos] == ",")):
                pos += 1
            if pos == len(buf):
                if eof:
                    raise ConllError(f"{path}: the JSON array is not closed")
                buf, pos = f.read(chunk), 0
                eof = not buf
                continue
            if not opened:
                if buf[pos] != "[":
                    raise ConllError(f"{path}: expected a JSON array of tasks")
                opened, pos = True, pos + 1
                continue
            if buf[pos] == "]":
                return
            try:
                item, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as e:
                more = f.read(max(chunk, len(buf) - pos))  # doubling: a long item is parsed O(log) times
                if not more:
                    raise ConllError(f"{path}: invalid JSON ({e.msg})") from None
                buf, pos = buf[pos:] + more, 0
                continue
            yield item
            buf, pos = buf[end:], 0


def documents(path, fmt):
    """(where, text, [(start, end, label)]) per document; malformed records as (where, None, message)."""
    if fmt == "label-studio":
        for i, task in enumerate(json_array_items(path)):
            where = f"{path}: task {task.get('id', i) if isinstance(task, dict) else i}"
            if isinstance(task, dict) and "data" not in task:
                text, spans = _label_studio_min(task)  # the JSON-MIN export: text and spans side by side
                yield where, text, points(text, spans) if text is not None else spans
                continue
            text = _task_text(task.get("data")) if isinstance(task, dict) else None
            if not isinstance(text, str):
                yield where, None, "no data.text string"
                continue
            kept = [a for a in task.get("annotations", []) if isinstance(a, dict) and not a.get("was_cancelled")]
            if not kept:  # pre-annotations not yet reviewed: their latest prediction
                kept = [p for p in task.get("predictions", []) if isinstance(p, dict)]
            kept.sort(key=lambda a: str(a.get("updated_at", a.get("created_at", ""))))
            spans = []
            for r in (kept[-1].get("result", []) if kept else []):
                v = r.get("value", {}) if isinstance(r, dict) else {}
                if "start" in v and "end" in v:
                    labels = v.get("labels") or [""]
                    spans.append((v["start"], v["end"], labels[0]))
            yield where, text, points(text, spans)
        return
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                yield where, None, f"invalid JSON ({e.msg})"
                continue
            text = record.get("text") if isinstance(record, dict) else None
            if not isinstance(text, str):
                yield where, None, "no text string"
                continue
            if fmt == "spacy":
                raw = [(s.get("start"), s.get("end"), s.get("label")) for s in record.get("spans", [])
                       if isinstance(s, dict)]
            elif "entities" in record:  # doccano's export of a project with relations
                raw = [(e.get("start_offset"), e.get("end_offset"), e.get("label")) if isinstance(e, dict)
                       else (None, None, None) for e in record["entities"]]
            else:
                raw = [tuple(s) if isinstance(s, (list, tuple)) and len(s) == 3 else (None, None, None)
                       for s in record.get("label", record.get("labels", []))]
            yield where, text, raw


def points(text, spans):
    """Label Studio's spans, counted in UTF-16 code units, as code-point offsets into ``text``."""
    to_points = Offsets(text).to_points
    return [(to_points(start) if isinstance(start, int) else start, to_points(end) if isinstance(end, int) else end,
             label) for start, end, label in spans]


def _task_text(data):
    """A Label Studio task's text: ``data.text``, or the one string of ``data`` when the labelling
    config names its text otherwise (``$sentence``, ``$body``)."""
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("text"), str):
        return data["text"]
    strings = [v for v in data.values() if isinstance(v, str)]
    return strings[0] if len(strings) == 1 else None


def _label_studio_min(task):
    """(text, spans) of a task of Label Studio's JSON-MIN export (the task's fields side by side, the
    spans a list under the labelling control's name), or (None, problem)."""
    strings = [v for k, v in task.items() if isinstance(v, str) and k not in ("annotator", "created_at", "updated_at")]
    text = task["text"] if isinstance(task.get("text"), str) else strings[0] if len(strings) == 1 else None
    if text is None:
        return None, "no text string"
    spans = [(v.get("start"), v.get("end"), (v.get("labels") or [""])[0])
             for values in task.values() if isinstance(values, list)
             for v in values if isinstance(v, dict) and "start" in v]
    return text, spans


def to_sentences(where, text, spans, doc):
    """(sentences with IOB2 tags, problems) of one document."""
    sents = tokenize(text)
    problems, tokens = [], [t for s in sents for t in s]
    sentence_of = [i for i, s in enumerate(sents) for _ in s]
    starts = {start: i for i, (_, start, _) in enumerate(tokens)}
    ends = {end: i for i, (_, _, end) in enumerate(tokens)}
    found, taken = [], set()
    for start, end, label in spans:
        if not (isinstance(start, int) and isinstance(end, int)) or not 0 <= start < end:
            problems.append(Problem(where, f"span {start!r}..{end!r} is not a pair of offsets, start before end"))
            continue
        if end > len(text):
            problems.append(Problem(where, f"span {start}..{end} runs past the text ({len(text)} characters)"))
            continue
        if not isinstance(label, str) or not label.strip():
            problems.append(Problem(where, f"span {start}..{end} {text[start:end]!r} has no label"))
            continue
        if start not in starts or end not in ends:
            problems.append(Problem(where, f"span {start}..{end} {text[start:end]!r} ({label}) does not fall on token "
                                           f"boundaries; nearest: {nearest(tokens, start, end)}"))
            continue
        first, last = starts[start], ends[end] + 1
        if taken & set(range(first, last)):
            problems.append(Problem(where, f"span {start}..{end} {text[start:end]!r} ({label}) overlaps another"))
            continue
        taken |= set(range(first, last))
        found.append((label, first, last))
    # Sentences a span runs across become one.
    groups = list(range(max(sentence_of, default=-1) + 1))
    for _, first, last in found:
        for k in range(sentence_of[first] + 1, sentence_of[last - 1] + 1):
            groups[k] = groups[sentence_of[first]]
    sentences, bounds = [], {}
    for i, g in enumerate(sentence_of):
        bounds.setdefault(groups[g], []).append(i)
    tags = iob2_tags(len(tokens), found)
    for indices in bounds.values():
        sentences.append(Sentence([tokens[i][0] for i in indices], [tags[i] for i in indices], doc))
    return sentences, problems


def nearest(tokens, start, end):
    """The token boundaries nearest a span's ends, as start..end offsets."""
    if not tokens:
        return "none (no tokens)"
    s = min((t[1] for t in tokens), key=lambda o: (abs(o - start), o))
    e = min((t[2] for t in tokens), key=lambda o: (abs(o - end), o))
    return f"{s}..{e}"


def iter_spans(path, fmt="auto"):
    """(sentences in IOB2, problems) per document of a span file, streamed; ``fmt`` resolved first:
    use ``resolve_format``."""
    for doc, (where, text, spans) in enumerate(documents(path, fmt)):
        if text is None:
            yield [], [Problem(where, spans)]
            continue
        yield to_sentences(where, text, spans, doc)


def resolve_format(path, fmt="auto"):
    fmt = detect(path) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise ConllError(f"{path}: not a doccano, Label Studio or spaCy span file (use --format)")
    return fmt


def read_spans(path, fmt="auto"):
    """(sentences in IOB2, the format read, problems) of a span file."""
    fmt = resolve_format(path, fmt)
    sentences, problems = [], []
    for sents, probs in iter_spans(path, fmt):
        sentences += sents
        problems += probs
    return sentences, fmt, problems


def is_span_file(path):
    """Whether a file holds JSON (a span export) rather than CoNLL columns, by its first character."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(4096).lstrip()[:1] in ("{", "[")
    except (OSError, UnicodeDecodeError):
        return False


def read_data(path, fmt="auto", skip_invalid=False, log=print):
    """(sentences in IOB2, what was read) of any training or evaluation file: CoNLL / BIO / BIOES
    columns, or a span file. A span file's problems stop it (ConllError naming the first), or with
    ``skip_invalid`` are skipped and counted."""
    if fmt == "auto":
        fmt = "span" if is_span_file(path) else "conll"
    if fmt == "conll":
        from training.conll import read_conll

        return read_conll(path)
    sentences, found, problems = read_spans(path, "auto" if fmt == "span" else fmt)
    if problems and not skip_invalid:
        raise ConllError(f"{problems[0]} ({len(problems)} problem(s) in all: python -m training.check lists them, "
                         "--skip-invalid skips them)")
    if problems:
        log(f"{path}: skipped {len(problems)} invalid span(s) or record(s)")
    if not sentences:
        raise ConllError(f"{path}: no sentences found")
    return sentences, found
