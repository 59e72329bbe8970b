"""X-Request-ID on every answer and in the access log; NERVE_LOG_FORMAT=json (real gunicorn)."""
import json
import re
import socket
import time

from server import Server


def raw(server, data):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.decode("latin-1")


def test_every_answer_carries_the_clients_request_id_or_one_made_for_it(server):
    status, head, _ = server.ner({"text": "Anna Berg flew to Oslo ."}, {"X-Request-ID": "abc-123"})
    assert status == 200 and head["x-request-id"] == "abc-123"
    _, head, _ = server.request("GET", "/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", head["x-request-id"])
    _, other, _ = server.request("GET", "/healthz")
    assert other["x-request-id"] != head["x-request-id"]
    _, head, _ = server.ner({"text": "x"}, {"X-Request-ID": "bad id\twith spaces"})  # not a plain token: a new one
    assert re.fullmatch(r"[0-9a-f]{32}", head["x-request-id"])
    status, head, _ = server.request("POST", "/v1/ner", b"x", {"Content-Type": "text/csv", "X-Request-ID": "e-415"})
    assert status == 415 and head["x-request-id"] == "e-415"
    # answered by the worker's event loop before any thread: the body is over the limit
    answer = raw(server, b"POST /v1/ner HTTP/1.1\r\nHost: x\r\nX-Request-ID: big-1\r\nContent-Type: application/json"
                         b"\r\nContent-Length: 99999999\r\n\r\n")
    assert answer.startswith("HTTP/1.1 413") and "X-Request-ID: big-1" in answer


def test_json_logs_are_one_object_a_line_with_the_request_id(tiny_model_dir, tmp_path):
    server = Server(tmp_path, model_dir=tiny_model_dir, NERVE_LOG_FORMAT="json", NERVE_ACCESS_LOG="-")
    try:
        server.ner({"text": "Anna Berg flew to Oslo ."}, {"X-Request-ID": "json-1"})
        server.request("GET", "/v1/nothing")
        time.sleep(0.5)
    finally:
        server.stop()
    lines = [line for line in open(server.log.name).read().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    access = [r for r in records if r.get("message") == "request"]
    ner = next(r for r in access if r["path"] == "/v1/ner")
    assert ner["request_id"] == "json-1" and ner["status"] == 200 and ner["model"] == "tiny" and ner["duration_ms"] > 0
    assert any(r["path"] == "/v1/nothing" and r["status"] == 404 for r in access)
    assert any(r["level"] == "info" and "Booting worker" in r.get("message", "") for r in records)


def test_the_text_access_log_names_the_request_id(tiny_model_dir, tmp_path):
    server = Server(tmp_path, model_dir=tiny_model_dir, NERVE_ACCESS_LOG="-")
    try:
        server.ner({"text": "Oslo"}, {"X-Request-ID": "text-7"})
        time.sleep(0.5)
    finally:
        server.stop()
    assert re.search(r'"POST /v1/ner HTTP/1.1" 200 \d+ \d+ms ".*" id=text-7', open(server.log.name).read())
