"""A Flask endpoint serving one peer (PEER=spacy|crf|crf_glove) like nerve's POST /v1/ner, for the
same gunicorn settings and load harness."""
import os

from flask import Flask, jsonify, request

from benchmarks.peers import systems

CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".cache")
app = Flask(__name__)
peer = os.environ.get("PEER", "spacy")
system = systems.Spacy() if peer == "spacy" else systems.Crf([], glove=peer == "crf_glove", cache_dir=CACHE)


@app.post("/v1/ner")
def ner():
    """Entities of one text."""
    return jsonify(model={"name": system.name}, entities=system.entities(request.get_json()["text"]))
