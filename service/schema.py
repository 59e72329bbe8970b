"""The request body of POST /v1/ner: parsed, checked, and turned into the arguments of predict."""
import json
from dataclasses import dataclass

from service.errors import RequestError


@dataclass
class NerRequest:
    texts: list
    batch: bool
    labels: list | None
    threshold: float
    tokens: bool
    explain: bool
    model: str | None = None


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body):
    """The JSON value of ``body`` (bytes); NaN/Infinity, bad UTF-8 and absurd nesting are 400s."""
    text = decode_text(body, "utf-8")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise RequestError(400, "invalid_json", "JSON is nested too deeply") from None
    except ValueError as e:
        raise RequestError(400, "invalid_json", f"body is not valid JSON: {e}") from None


def charset(params):
    """The charset parameter of a Content-Type's parameters ("; a=b; charset=x"), UTF-8 when absent."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"'):
            return value.strip().strip('"')
    return "utf-8"


def decode_text(body, encoding):
    """A text/plain body as text; offsets in the answer count code points of this text."""
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as e:
        raise RequestError(400, "invalid_encoding",
                           f"body is not valid {encoding} ({e.reason} at byte {e.start})") from None
    except (LookupError, UnicodeError):  # an unknown name, a codec that is no text encoding (base64), "undefined"
        raise RequestError(415, "unsupported_charset",
                           f"charset {encoding!r} is not known: send UTF-8 or name a text encoding") from None


def _expect(cond, message, status=400, code="invalid_request"):
    if not cond:
        raise RequestError(status, code, message)


def parse_ner_request(content_type, body, limits, query_model=None):
    """A NerRequest from a raw body. ``limits``: max_text_chars, max_texts; ``query_model``: ?model=.
    Its labels are checked against the chosen model's by ``check_labels``."""
    mime, _, params = (content_type or "").partition(";")
    mime = mime.strip().lower()
    if mime == "text/plain":
        payload = {"text": decode_text(body, charset(params))}
    elif mime == "application/json" or mime.endswith("+json"):
        payload = parse_json(body)
    else:
        raise RequestError(415, "unsupported_media_type",
                           f"Content-Type {mime or '(none)'!r} is not accepted: send application/json or text/plain")
    _expect(isinstance(payload, dict), "the JSON body must be an object such as {\"text\": \"...\"}")
    allowed = {"text", "texts", "labels", "threshold", "tokens", "explain", "model"}
    unknown = sorted(set(payload) - allowed)
    _expect(not unknown, f"unknown fields {unknown}; accepted: {sorted(allowed)}")
    _expect(("text" in payload) != ("texts" in payload),
            "give exactly one of \"text\" (a string) or \"texts\" (a list)")

    batch = "texts" in payload
    texts = payload["texts"] if batch else [payload["text"]]
    _expect(isinstance(texts, list), "\"texts\" must be a list of strings")
    _expect(all(isinstance(t, str) for t in texts),
            "\"texts\" must be a list of strings" if batch else "\"text\" must be a string")
    if len(texts) > limits["max_texts"]:
        raise RequestError(413, "too_many_texts", f"{len(texts)} texts; at most {limits['max_texts']} per request")
    for i, t in enumerate(texts):
        if len(t) > limits["max_text_chars"]:
            where = f"text {i}" if batch else "text"
            raise RequestError(413, "text_too_long",
                               f"{where} has {len(t)} characters; at most {limits['max_text_chars']}")

    labels = payload.get("labels")
    if "labels" in payload:
        _expect(isinstance(labels, list) and all(isinstance(x, str) for x in labels),
                "\"labels\" must be a list of strings (leave it out for every type)")
    if "model" in payload:
        _expect(isinstance(payload["model"], str) and payload["model"], "\"model\" must be a model's name, or "
                "NAME/VERSION (leave it out for the default)")
    model = payload.get("model", query_model)
    threshold = payload.get("threshold", 0.0)
    _expect(isinstance(threshold, (int, float)) and not isinstance(threshold, bool),
            "\"threshold\" must be a number")
    _expect(0.0 <= threshold <= 1.0, "\"threshold\" must be between 0 and 1", 422, "invalid_threshold")
    for flag in ("tokens", "explain"):
        _expect(isinstance(payload.get(flag, False), bool), f"\"{flag}\" must be true or false")
    return NerRequest(texts=texts, batch=batch, labels=labels, threshold=float(threshold),
                      tokens=payload.get("tokens", True), explain=payload.get("explain", False), model=model)


def check_labels(labels, known_labels):
    """422 for labels of a request that the chosen model does not know."""
    unknown_labels = sorted(set(labels or ()) - set(known_labels))
    _expect(not unknown_labels, f"unknown labels {unknown_labels}; the model knows {sorted(known_labels)}",
            422, "unknown_label")
