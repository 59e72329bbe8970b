"""Every error is JSON {"error": {"code", "message"}}: no HTML pages, no tracebacks."""
from flask import jsonify
from werkzeug.exceptions import HTTPException


class RequestError(Exception):
    """A request we refuse; becomes {"error": {"code", "message"}} with ``status`` (and ``headers``)."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_document(code, message):
    """The one shape of every error, from the app and from the worker that reads requests."""
    return {"error": {"code": code, "message": message}}


def error_response(status, code, message, headers=None):
    response = jsonify(error_document(code, message))
    response.status_code = status
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


def init_app(app):
    @app.errorhandler(RequestError)
    def request_error(e):
        return error_response(e.status, e.code, e.message, e.headers)

    @app.errorhandler(HTTPException)
    def http_error(e):
        code = (e.name or "error").lower().replace(" ", "_")
        headers = {"Allow": ", ".join(e.valid_methods)} if getattr(e, "valid_methods", None) else None
        return error_response(e.code or 500, code, e.description or e.name, headers)

    @app.errorhandler(Exception)
    def unexpected(e):
        app.logger.exception("unexpected error")
        return error_response(500, "internal_error", "the request could not be answered; it has been logged")
