"""Routes. Each view parses, calls a plain function, and returns JSON."""
import json
import os
import threading

from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory

from model.artifact import ArtifactError
from model.predict import annotate
from service import metrics
from service.access import in_flight
from service.errors import RequestError
from service.label_studio import TrainingCollector
from service.model_registry import UnknownModel
from service.schema import check_labels, parse_json, parse_ner_request

bp = Blueprint("api", __name__)
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


def registry():
    return current_app.extensions["nerve_models"]


def model_header(model):
    return {"X-Nerve-Model": f"{model.name}/{model.version}"}


def model_summary(model):
    m, reg = model.manifest, registry()
    dictionary = current_app.extensions["nerve_dictionary"].describe(model)
    candidate = reg.candidate_model(model.name)
    return {**({"dictionary": dictionary} if dictionary else {}),
            **({"candidate": {"version": candidate.version, "share": reg.share}} if candidate is not None else {}),
            "name": model.name, "version": model.version, "default": model.name == reg.default(),
            "created": m.get("created"),
            "labels": model.types, "tags": model.labels, "config": m["config"],
            "metrics": m.get("metrics", {}), "calibration": m.get("calibration", {}),
            "training": {k: v for k, v in m.get("training", {}).items() if k != "config"},
            "gazetteer": {k: v for k, v in m.get("gazetteer", {}).items() if k != "categories"} or None}


@bp.get("/")
def demo():
    """The demo page."""
    return send_from_directory(STATIC, "index.html")


@bp.get("/openapi.json")
def openapi():
    """The API description, with the labels of the models being served."""
    reg = registry()
    reg.refresh()
    return jsonify(api_description(list(reg.served().values())))


def api_description(models):
    with open(os.path.join(STATIC, "openapi.json"), encoding="utf-8") as f:
        spec = json.load(f)
    if models:
        labels = spec["components"]["schemas"]["NerRequest"]["properties"]["labels"]
        labels["items"]["enum"] = sorted({t for m in models for t in m.types})
    return spec


@bp.get("/healthz")
def healthz():
    """Alive: the process answers."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready: every configured model serves a valid version and the worker is not shutting down."""
    reg = registry()
    reg.refresh()
    if current_app.extensions["nerve_draining"].is_set():
        return jsonify(status="draining", reason="shutting down"), 503
    problems = reg.problems()
    if problems:
        reason = "; ".join(f"{what}: {why}" for what, why in problems.items())
        return jsonify(status="not ready", reason=reason, problems=problems), 503
    model = reg.served()[reg.default()]
    return jsonify(status="ready", model={"name": model.name, "version": model.version},
                   models=sorted(reg.served()))


@bp.get("/v1/model")
def model_info():
    """The manifest of the default model (or of ?model=)."""
    model = chosen_model(query_model())
    return jsonify(model_summary(model)), 200, model_header(model)


def query_model():
    """?model= of the request: None when absent, 400 when empty."""
    choice = request.args.get("model")
    if choice == "":
        raise RequestError(400, "invalid_request", "?model= must name a model (NAME or NAME/VERSION)")
    return choice


@bp.get("/v1/models")
def models_info():
    """Every model served, the default first; folders refused as they are now, by name."""
    reg = registry()
    reg.refresh()
    served, default = reg.served(), reg.default()
    names = sorted(served, key=lambda name: (name != default, name))
    return jsonify(default=default, models=[model_summary(served[n]) for n in names], refused=reg.folder_errors())


@bp.get("/v1/models/<path:name>")
def model_by_name(name):
    """One model's manifest, by NAME or NAME/VERSION."""
    model = chosen_model(name)
    return jsonify(model_summary(model)), 200, model_header(model)


@bp.post("/v1/ner")
def ner():
    """Entities and per-token probabilities for one text or many."""
    with in_flight(), current_app.extensions["nerve_mirror"].busy():
        req = parse_ner_request(request.content_type, read_body(), limits(), query_model())
        model = chosen_model(req.model)
        check_labels(req.labels, model.types)
        results, n_tokens = annotate(req.texts, model, req.labels, req.threshold, req.tokens, req.explain)
    metrics.record_result(model.name, results, n_tokens)
    mirror(model, req, results)
    head = {"model": {"name": model.name, "version": model.version}}
    payload = {**head, "results": results} if req.batch else {**head, **results[0]}
    return jsonify(payload), 200, model_header(model)


def mirror(model, req, results):
    """A share of the traffic of a model with a candidate, tagged again by the candidate afterwards."""
    candidate = registry().candidate_model(model.name)
    if candidate is not None and candidate is not model:
        current_app.extensions["nerve_dictionary"].apply(candidate)
        current_app.extensions["nerve_mirror"].offer(candidate, req, results)


@bp.post("/v1/admin/reload")
def reload_model():
    """Load a model directory (default: the current one again) and switch to it atomically."""
    if not current_app.config["API_KEYS"]:
        raise RequestError(403, "admin_disabled", "admin endpoints need NERVE_API_KEYS to be set")
    body = read_body()
    payload = parse_json(body) if body.strip() else {}
    path = payload.get("path") if isinstance(payload, dict) else None
    if path is not None and not isinstance(path, str):
        raise RequestError(400, "invalid_request", "\"path\" must be a string")
    store = registry().single
    if store is None:
        raise RequestError(409, "reload_not_applicable", "the folders of NERVE_MODELS are watched: a model is "
                           "picked up when its folder changes")
    try:
        model = store.reload(path)
    except ArtifactError as e:
        raise RequestError(422, "invalid_model", f"model refused, the previous one keeps serving: {e}") from None
    return jsonify(status="loaded", model={"name": model.name, "version": model.version}), 200, model_header(model)


@bp.get("/metrics")
def metrics_view():
    """Prometheus metrics of every worker."""
    training = current_app.config["TRAINING_DIR"]
    body, content_type = metrics.exposition([TrainingCollector(training)] if training else [])
    return Response(body, content_type=content_type)


def chosen_model(choice=None):
    """The model a request asked for (NAME or NAME/VERSION; None: the default), its dictionary applied."""
    reg = registry()
    try:
        model = reg.get(choice)
    except UnknownModel as e:
        raise RequestError(404, "unknown_model", str(e)) from None
    if model is None:
        problems = "; ".join(f"{what}: {why}" for what, why in reg.problems().items())
        raise RequestError(503, "model_unavailable", f"no model is loaded: {problems}")
    current_app.extensions["nerve_dictionary"].apply(model)
    request.environ["nerve.model"] = model.name
    return model


def limits():
    return {"max_text_chars": current_app.config["MAX_TEXT_CHARS"], "max_texts": current_app.config["MAX_TEXTS"]}


def read_body(limit=None):
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise RequestError(415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not accepted: send the "
                           "body uncompressed")
    # Read the body ourselves, to the limit and one byte more: a chunked body has no length up
    # front, and must be refused with 413 rather than cut short and parsed.
    limit = limit or current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise RequestError(413, "request_entity_too_large", f"body over the limit of {limit} bytes")
    data = request.environ["wsgi.input"].read(limit + 1)
    if len(data) > limit:
        raise RequestError(413, "request_entity_too_large", f"body over the limit of {limit} bytes")
    return data


def init_app(app):
    app.extensions["nerve_draining"] = threading.Event()  # set on SIGTERM: readiness 503 while work finishes
    app.register_blueprint(bp)
    app.wsgi_app = metrics.Instrumented(app.wsgi_app, app.url_map)
