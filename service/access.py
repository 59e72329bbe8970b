"""Who may call, from which origins, and how many requests a worker works on at once."""
import base64
import hmac
import threading
from contextlib import contextmanager

from flask import current_app, request

from service import metrics
from service.errors import RequestError, error_response

OPEN_PATHS = {"/healthz", "/readyz", "/metrics", "/", "/openapi.json", "/favicon.ico"}


def check_api_key():
    """401 unless the request carries one of the keys (X-API-Key, Authorization: Bearer, or as the
    password of HTTP Basic, which is all Label Studio's backend connection can send); the probes,
    the metrics, the demo page and the API description stay open."""
    if request.path in OPEN_PATHS or request.path.startswith("/static/"):
        return None
    given = request.headers.get("X-API-Key") or ""
    auth = request.headers.get("Authorization", "")
    if not given and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    elif not given and auth.lower().startswith("basic "):
        given = basic_password(auth[6:].strip())
    if not any(hmac.compare_digest(given.encode(), k.encode()) for k in current_app.config["API_KEYS"]):
        return error_response(401, "unauthorized", "missing or wrong API key: send it as X-API-Key",
                              {"WWW-Authenticate": "Bearer"})
    return None


def basic_password(encoded):
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")[2]
    except (ValueError, UnicodeDecodeError):
        return ""


def add_cors_headers(response):
    origins = current_app.config["CORS_ORIGINS"]
    origin = request.headers.get("Origin")
    if origin and ("*" in origins or origin in origins):
        response.headers["Access-Control-Allow-Origin"] = "*" if "*" in origins else origin
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, X-API-Key, Authorization"
        response.headers["Vary"] = "Origin"
    return response


@contextmanager
def in_flight():
    """A place among the worker's ``MAX_IN_FLIGHT`` requests at work, or 503 with Retry-After at once."""
    gate = current_app.extensions["nerve_gate"]
    if not gate.acquire(blocking=False):
        metrics.REJECTED.labels("overload").inc()
        raise RequestError(503, "overloaded", "too many requests in progress; retry shortly", {"Retry-After": "1"})
    try:
        yield
    finally:
        gate.release()


def init_app(app):
    app.extensions["nerve_gate"] = threading.BoundedSemaphore(app.config["MAX_IN_FLIGHT"])
    if app.config["API_KEYS"]:
        app.before_request(check_api_key)
    if app.config["CORS_ORIGINS"]:
        app.after_request(add_cors_headers)
