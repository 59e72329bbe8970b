"""Where documents come from: plain text (a document per line, or per file) and JSONL records.

Input is cut into shards of consecutive lines (or files) by the reader alone, before anything is
parsed, so that a shard is the same set of lines in every run: that is what makes a rerun skip
exactly the shards that were finished and redo the others.
"""
import json
import os

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number",
               bool: "a boolean", type(None): "null"}


def expand(inputs):
    """The files named, folders expanded to the files under them (sorted); hidden files skipped."""
    files = []
    for path in inputs:
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files += [os.path.join(root, n) for n in sorted(names) if not n.startswith(".")]
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return files


def kind_of(path, forced):
    if forced != "auto":
        return forced
    return "jsonl" if path.lower().endswith(JSONL_SUFFIXES) else "text"


def units(files, per_file):
    """(path, line number, raw text) in input order: one per line, or one per file with ``per_file``."""
    for path in files:
        if per_file:
            with open(path, "rb") as f:
                yield path, 1, f.read()
            continue
        with open(path, "rb") as f:
            for lineno, line in enumerate(f, 1):
                yield path, lineno, line


def count_units(files, per_file):
    """How many units ``units`` yields, counted without decoding anything (for the ETA)."""
    if per_file:
        return len(files)
    total = 0
    for path in files:
        with open(path, "rb") as f:
            last = b"\n"
            for block in iter(lambda: f.read(1 << 20), b""):
                total += block.count(b"\n")
                last = block[-1:]
            total += last != b"\n"
    return total


def parse(path, lineno, raw, kind, text_field, id_field, max_chars, per_file):
    """(document id, text), or None for a line to skip silently (blank), or raises BadRecord."""
    where = f"{path}:{lineno}"
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRecord(where, f"not UTF-8 ({e.reason} at byte {e.start})") from None
    if kind == "text":
        text = decoded if per_file else decoded.rstrip("\r\n")
        if not text.strip():
            return None
        doc_id = path if per_file else where
    else:
        if not decoded.strip():
            return None
        try:
            record = json.loads(decoded)
        except json.JSONDecodeError as e:
            raise BadRecord(where, f"invalid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(record, dict):
            raise BadRecord(where, f"{_JSON_TYPES[type(record)]}, not a JSON object")
        if text_field not in record:
            raise BadRecord(where, f"no {text_field!r} field")
        text = record[text_field]
        if not isinstance(text, str):
            raise BadRecord(where, f"{text_field!r} is {_JSON_TYPES[type(text)]}, not a string")
        doc_id = record.get(id_field, where)
        if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool):
            raise BadRecord(where, f"{id_field!r} must be a string or an integer")
    if len(text) > max_chars:
        raise BadRecord(where, f"text of {len(text)} characters; at most {max_chars}")
    return doc_id, text


class BadRecord(ValueError):
    """A record that cannot be tagged; ``where`` is file:line."""

    def __init__(self, where, reason):
        super().__init__(f"{where}: {reason}")
        self.where, self.reason = where, reason

    def __reduce__(self):  # raised in a worker process, it comes back to the job whole
        return BadRecord, (self.where, self.reason)
