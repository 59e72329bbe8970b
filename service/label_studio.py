"""Label Studio's ML backend protocol over nerve's models: what its routes do, as plain functions.

Label Studio counts text offsets in UTF-16 code units, nerve in code points: every offset crossing
here is converted (model.utf16). It sends all the tasks an annotator selected in one request and
drops every prediction if the answer fails or counts wrong, so tasks are tagged in chunks and a
task that cannot be tagged (no text, a text over the limit) gets an empty prediction in its place.
"""
import json
import os
import time

from model.artifact import atomic_write
from model.label_config import parse
from model.predict import annotate, confidence
from model.tokenize import tokenize
from model.utf16 import Offsets

CHUNK = 256          # tasks tagged together
MAX_TASKS = 100_000  # per request; more is the request's fault (400), not a reason to drop predictions


def model_version(model):
    """What /setup answers: it changes whenever the model that answers changes."""
    return f"{model.name}/{model.version}"


def task_text(task, field, max_chars):
    """The text of ``task`` under its data ``field``, or None when there is none to tag."""
    data = task.get("data") if isinstance(task, dict) else None
    text = data.get(field) if isinstance(data, dict) else None
    return text if isinstance(text, str) and len(text) <= max_chars else None


def region(config, start, end, text, label, score, offsets, origin="prediction"):
    """A Label Studio text region of ``text[start:end]`` (code points) with offsets in UTF-16 units."""
    return {"from_name": config.from_name, "to_name": config.to_name, "type": "labels", "origin": origin,
            "value": {"start": offsets.to_units(start), "end": offsets.to_units(end), "text": text,
                      "labels": [label]}, "score": score}


def predictions(tasks, label_config, model, max_chars, context=None):
    """One prediction per task, in task order: ``{"result": [regions], "score", "model_version"}``."""
    config = parse(label_config, model.types)
    version, out = model_version(model), []
    wanted = list(config.by_type)
    for begin in range(0, len(tasks), CHUNK):
        part = tasks[begin: begin + CHUNK]
        texts = [task_text(t, config.field, max_chars) for t in part]
        tagged = [t for t in texts if t is not None]
        results = iter(annotate(tagged, model, wanted, 0.0, True, False)[0] if tagged else [])
        for text in texts:
            if text is None:
                out.append({"result": [], "score": 0.0, "model_version": version})
                continue
            result = next(results)
            offsets = Offsets(text)
            regions = [region(config, e["start"], e["end"], e["text"], config.label_of(e["label"]), e["score"],
                              offsets) for e in result["entities"]]
            if context:
                suggested, own = suggestions(text, context, config, offsets)
                regions = without_overlaps(suggested + regions, taken=own)
            score = confidence(result["tokens"])
            out.append({"result": regions, "score": 1.0 if score is None else score, "model_version": version})
    return out


def suggestions(text, context, config, offsets):
    """(regions, theirs): the annotator's regions (``context["result"]``) found again elsewhere in the
    text, on token boundaries, with the label they chose, and the regions they made themselves
    (no suggestion may overlap those)."""
    bounds = [(s, e) for sentence in tokenize(text) for _, s, e in sentence]
    starts, ends = {s for s, _ in bounds}, {e for _, e in bounds}
    out, theirs = [], []
    for given in context.get("result") or []:
        value = given.get("value") if isinstance(given, dict) else None
        labels = value.get("labels") if isinstance(value, dict) else None
        if not labels or not isinstance(value.get("start"), int) or not isinstance(value.get("end"), int):
            continue
        start, end = offsets.to_points(value["start"]), offsets.to_points(value["end"])
        theirs.append({"value": {"start": value["start"], "end": value["end"]}})
        phrase = text[start:end].strip()
        if not phrase:
            continue
        at = text.find(phrase)
        while at != -1:
            stop = at + len(phrase)
            if at in starts and stop in ends and (at, stop) != (start, end):
                out.append(region(config, at, stop, phrase, labels[0], 1.0, offsets))
            at = text.find(phrase, at + 1)
    return out, theirs


def without_overlaps(regions, taken=()):
    """Regions in order of preference, those overlapping an earlier one or one ``taken`` left out;
    sorted by start."""
    kept, seen = [], list(taken)
    for r in regions:
        v = r["value"]
        if all(v["end"] <= k["value"]["start"] or v["start"] >= k["value"]["end"] for k in seen):
            kept.append(r)
            seen.append(r)
    return sorted(kept, key=lambda r: r["value"]["start"])


def project_id(project):
    """Label Studio's project field ("<id>.<created timestamp>", or an id, or {"id": ...}) as an id."""
    if isinstance(project, dict):
        project = project.get("id")
    text = str(project if project is not None else "").split(".")[0].strip()
    return text if text.isdigit() else None


def remember_project(training_dir, body):
    """What /setup received (where Label Studio is, and the token to read the project's annotations
    with), kept where the trainer finds it; the file is readable by its owner alone."""
    pid = project_id(body.get("project"))
    if not training_dir or pid is None or not body.get("hostname"):
        return None
    record = {"project": pid, "hostname": body["hostname"], "access_token": body.get("access_token"),
              "label_config": body.get("schema"), "updated": time.time()}
    path = os.path.join(training_dir, "projects", f"{pid}.json")
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    atomic_write(path, json.dumps(record).encode(), mode=0o600)
    return pid


TRAIN_ACTIONS = {"START_TRAINING"}
ANNOTATION_ACTIONS = {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED"}
KNOWN_ACTIONS = TRAIN_ACTIONS | ANNOTATION_ACTIONS | {"ANNOTATIONS_DELETED", "TASKS_CREATED", "TASKS_DELETED",
                                                       "PROJECT_CREATED", "PROJECT_UPDATED", "PROJECT_DELETED"}


def request_training(training_dir, pid, reason):
    """A durable training request for project ``pid``: one file per project, replaced by a newer one
    (a run uses every annotation there is when it starts, so requests made meanwhile are one)."""
    path = os.path.join(training_dir, "requests", f"{pid}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write(path, json.dumps({"project": pid, "reason": reason, "requested": time.time()}).encode())
    return path


def count_annotation(training_dir, pid, every):
    """Count an annotation event of ``pid``; True when it makes ``every`` since the last request."""
    path = os.path.join(training_dir, "counts", f"{pid}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path, "rb") as f:
            n = int(json.loads(f.read())["since"])
    except (OSError, ValueError, KeyError, TypeError):
        n = 0
    n += 1
    due = every > 0 and n >= every
    atomic_write(path, json.dumps({"since": 0 if due else n}).encode())
    return due


def webhook(training_dir, body, every):
    """(status, payload) for a webhook event: training requested, counted, or nothing to do."""
    action = body.get("action")
    pid = project_id(body.get("project"))
    if action not in TRAIN_ACTIONS | ANNOTATION_ACTIONS:
        return 200, {"status": "ignored", "action": action}
    if not training_dir:
        return 200, {"status": "ignored", "action": action, "reason": "training is not set up (NERVE_TRAINING_DIR)"}
    if pid is None:
        return 200, {"status": "ignored", "action": action, "reason": "the event names no project"}
    if action in TRAIN_ACTIONS or count_annotation(training_dir, pid, every):
        request_training(training_dir, pid, action)
        return 201, {"status": "training requested", "project": pid}
    return 200, {"status": "counted", "project": pid}


def training_state(training_dir):
    """What /label-studio/health says of training: requests pending, and the trainer's last word."""
    if not training_dir:
        return None
    state = {"pending": []}
    try:
        names = sorted(os.listdir(os.path.join(training_dir, "requests")))
    except OSError:
        names = []
    state["pending"] = [n[:-5] for n in names if n.endswith(".json")]
    try:
        with open(os.path.join(training_dir, "status.json"), "rb") as f:
            state["trainer"] = json.loads(f.read())
    except (OSError, ValueError):
        state["trainer"] = None
    return state


class TrainingCollector:
    """Training's state as metrics, read from the training folder at each scrape: requests pending,
    what the trainer is doing, and how its last run ended."""

    def __init__(self, training_dir):
        self.training_dir = training_dir

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        state = training_state(self.training_dir) or {"pending": [], "trainer": None}
        yield GaugeMetricFamily("nerve_training_requests_pending", "Training requests waiting for the trainer",
                                value=len(state["pending"]))
        trainer = state["trainer"] or {}
        doing = GaugeMetricFamily("nerve_trainer_state", "What the trainer is doing (value 1)", labels=["state"])
        doing.add_metric([str(trainer.get("state", "unknown"))], 1)
        yield doing
        last = trainer.get("last") or {}
        ended = GaugeMetricFamily("nerve_trainer_last_run", "How the trainer's last run ended (value 1) and when",
                                  labels=["result"])
        if last:
            result = str(last.get("result", "")).split(":")[0]
            ended.add_metric([result], trainer.get("at", 0))
        yield ended
