"""Responses serialised by orjson: a large batch answer is mostly floats, which it writes many
times faster than the standard library. Text orjson refuses (lone surrogates, which a JSON request
may carry) falls back to the standard encoder, which escapes it."""
import json

import orjson
from flask.json.provider import DefaultJSONProvider


class OrjsonProvider(DefaultJSONProvider):
    def dumps(self, obj, **kwargs):
        try:
            return orjson.dumps(obj).decode("utf-8")
        except TypeError:
            return json.dumps(obj)

    def response(self, *args, **kwargs):
        obj = args[0] if len(args) == 1 else (list(args) or kwargs)
        try:
            body = orjson.dumps(obj)
        except TypeError:
            body = json.dumps(obj).encode("utf-8")
        return self._app.response_class(body, mimetype=self.mimetype)
