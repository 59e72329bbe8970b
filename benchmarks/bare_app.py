"""The baseline for benchmarks/serve.py: a Flask endpoint that parses the JSON body and answers a
fixed small result, with no model, under the same gunicorn settings as nerve."""
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/v1/ner")
def ner():
    payload = request.get_json()
    return jsonify(model={"name": "bare", "version": "0"}, entities=[], n=len(payload.get("text", "")))
