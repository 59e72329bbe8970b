"""Logs and request ids: every answer carries X-Request-ID (the client's, or one made here), the
access log writes it, and NERVE_LOG_FORMAT=json makes every log line one JSON object."""
import json
import logging
import re
import time
import uuid

from gunicorn import glogging

_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def request_id(given):
    """The client's X-Request-ID when it is a plain token of at most 128 characters, else a new one."""
    if isinstance(given, bytes):
        given = given.decode("latin-1")
    return given if given and _ID.fullmatch(given) else uuid.uuid4().hex


class RequestIds:
    """WSGI middleware: the request's id in ``environ["nerve.request_id"]`` and on the answer."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        rid = environ["nerve.request_id"] = request_id(environ.get("HTTP_X_REQUEST_ID"))

        def start(status, headers, exc_info=None):
            headers.append(("X-Request-ID", rid))
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; an access record's fields are its own keys."""

    def format(self, record):
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                 + f".{int(record.msecs):03d}Z", "level": record.levelname.lower(), "logger": record.name}
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class Logger(glogging.Logger):
    """gunicorn's logger, in JSON when the configuration asks for it (``json_logs``)."""

    json_logs = False

    def setup(self, cfg):
        super().setup(cfg)
        if self.json_logs:
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(JsonFormatter())

    def access(self, resp, req, environ, request_time):
        if not self.json_logs:
            return super().access(resp, req, environ, request_time)
        if not self.access_log_enabled:
            return None
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        fields = {"message": "request", "remote": environ.get("REMOTE_ADDR"), "method": environ.get("REQUEST_METHOD"),
                  "path": environ.get("PATH_INFO"), "query": environ.get("QUERY_STRING") or None,
                  "status": int(status), "bytes": getattr(resp, "sent", None),
                  "duration_ms": round(request_time.total_seconds() * 1000, 3),
                  "request_id": environ.get("nerve.request_id"), "model": environ.get("nerve.model") or None,
                  "user_agent": environ.get("HTTP_USER_AGENT")}
        self.access_log.info("request", extra={"fields": fields})
        return None


class JsonLogger(Logger):
    json_logs = True
