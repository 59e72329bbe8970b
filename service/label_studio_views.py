"""Label Studio's ML backend routes, under /label-studio (the default model) and
/label-studio/NAME (a model by name): the backend URL a user enters in Label Studio."""
from flask import Blueprint, current_app, jsonify

from model.label_config import LabelConfigError
from service import label_studio, metrics
from service.errors import RequestError
from service.schema import parse_json
from service.views import chosen_model, model_header, read_body

bp = Blueprint("label_studio", __name__, url_prefix="/label-studio")


def both(rule, **options):
    """A route for the default model and one for a model by name."""
    def register(view):
        bp.route(rule, **options)(view)
        bp.route(f"/<path:name>{rule}", **options)(view)
        return view
    return register


def body_object():
    payload = parse_json(read_body(current_app.config["LABEL_STUDIO_MAX_BODY_BYTES"]))
    if not isinstance(payload, dict):
        raise RequestError(400, "invalid_request", "the JSON body must be an object")
    return payload


@both("/health", methods=["GET"])
def health(name=None):
    """Label Studio's health check: the model that would answer, and the state of training."""
    model = chosen_model(name)
    state = label_studio.training_state(current_app.config["TRAINING_DIR"])
    return jsonify(status="UP", model_class="nerve", model_version=label_studio.model_version(model),
                   training=state), 200, model_header(model)


@both("/setup", methods=["POST"])
def setup(name=None):
    """The project connects (and reconnects before each predict): the model version it should expect."""
    body = body_object()
    model = chosen_model(name)
    label_studio.remember_project(current_app.config["TRAINING_DIR"], body)
    return jsonify(model_version=label_studio.model_version(model)), 200, model_header(model)


@both("/predict", methods=["POST"])
def predict(name=None):
    """One prediction per task, in task order."""
    body = body_object()
    tasks = body.get("tasks")
    if not isinstance(tasks, list):
        raise RequestError(400, "invalid_request", "\"tasks\" must be a list of tasks")
    if len(tasks) > label_studio.MAX_TASKS:
        raise RequestError(400, "too_many_tasks", f"{len(tasks)} tasks; at most {label_studio.MAX_TASKS} per call")
    params = body.get("params") if isinstance(body.get("params"), dict) else {}
    context = params.get("context") if isinstance(params.get("context"), dict) else None
    model = chosen_model(name)
    try:
        results = label_studio.predictions(tasks, body.get("label_config"), model,
                                           current_app.config["MAX_TEXT_CHARS"], context)
    except LabelConfigError as e:
        raise RequestError(422, "invalid_label_config", str(e)) from None
    metrics.child(metrics.TEXTS, model.name).inc(len(tasks))
    return jsonify(results=results, model_version=label_studio.model_version(model)), 200, model_header(model)


@both("/webhook", methods=["POST"])
def webhook(name=None):
    """Project events: training is requested, annotations counted; answered at once."""
    body = body_object()
    status, payload = label_studio.webhook(current_app.config["TRAINING_DIR"], body, current_app.config["TRAIN_EVERY"])
    action = body.get("action") if body.get("action") in label_studio.KNOWN_ACTIONS else "other"
    metrics.child(metrics.LABEL_STUDIO_EVENTS, action, payload["status"]).inc()
    return jsonify(payload), status


def init_app(app):
    app.register_blueprint(bp)
