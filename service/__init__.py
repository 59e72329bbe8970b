"""HTTP service: a Flask app factory whose views are thin wrappers around model.predict."""
import os

from flask import Flask

from service import access, errors, label_studio_views, views
from service.dictionary_store import DictionaryStore
from service.json_provider import OrjsonProvider
from service.logs import RequestIds
from service.mirror import Mirror
from service.model_registry import ModelRegistry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every setting, its environment variable and its default: the README's configuration table.
SETTINGS = {
    "MODEL_DIR": ("NERVE_MODEL", os.path.join(ROOT, "models", "default"), str),
    "MODELS_DIR": ("NERVE_MODELS", "", str),
    "CANDIDATE": ("NERVE_CANDIDATE", "", str),
    "CANDIDATE_SHARE": ("NERVE_CANDIDATE_SHARE", 0.1, float),
    "MAX_CONTENT_LENGTH": ("NERVE_MAX_BODY_BYTES", 1_048_576, int),
    "MAX_TEXT_CHARS": ("NERVE_MAX_TEXT_CHARS", 100_000, int),
    "MAX_TEXTS": ("NERVE_MAX_TEXTS", 256, int),
    "MAX_IN_FLIGHT": ("NERVE_MAX_IN_FLIGHT", 8, int),
    "API_KEYS": ("NERVE_API_KEYS", "", str),
    "CORS_ORIGINS": ("NERVE_CORS_ORIGINS", "", str),
    "STATE_DIR": ("NERVE_STATE_DIR", "", str),
    "DICTIONARY": ("NERVE_DICTIONARY", "", str),
    "LABEL_STUDIO_MAX_BODY_BYTES": ("NERVE_LABEL_STUDIO_MAX_BODY_BYTES", 256 * 1_048_576, int),
    "TRAINING_DIR": ("NERVE_TRAINING_DIR", "", str),
    "TRAIN_EVERY": ("NERVE_TRAIN_EVERY", 0, int),
}


def settings_from_env(environ=os.environ):
    return {key: kind(environ.get(var, default)) for key, (var, default, kind) in SETTINGS.items()}


def create_app(config=None):
    """The app, configured from the environment and then from ``config`` (a dict), model loaded."""
    app = Flask(__name__, static_folder="static")
    app.json = OrjsonProvider(app)
    app.config.update(settings_from_env())
    app.config.update(config or {})
    explicit = "MODEL_DIR" in (config or {}) or bool(os.environ.get("NERVE_MODEL"))
    app.config["API_KEYS"] = [k for k in str(app.config["API_KEYS"]).split(",") if k.strip()]
    app.config["CORS_ORIGINS"] = [o.strip() for o in str(app.config["CORS_ORIGINS"]).split(",") if o.strip()]
    app.extensions["nerve_models"] = ModelRegistry(
        app.config["MODEL_DIR"], app.config["MODELS_DIR"], app.config["STATE_DIR"], explicit,
        app.config["CANDIDATE"], app.config["CANDIDATE_SHARE"])
    app.extensions["nerve_mirror"] = Mirror(app.config["CANDIDATE_SHARE"], enabled=bool(app.config["CANDIDATE"]))
    app.extensions["nerve_dictionary"] = DictionaryStore(app.config["DICTIONARY"], app.config["STATE_DIR"])
    errors.init_app(app)
    access.init_app(app)
    label_studio_views.init_app(app)
    views.init_app(app)
    app.wsgi_app = RequestIds(app.wsgi_app)
    return app
