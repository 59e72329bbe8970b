import gzip
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from server import Server, metric

SENTENCE = "Anna Berg visited Oslo on Monday."


def test_one_text_gets_entities_with_offsets_and_token_probabilities(server):
    status, headers, body = server.ner({"text": SENTENCE})
    assert status == 200
    assert body["model"] == {"name": "tiny", "version": "t1"} and headers["x-nerve-model"] == "tiny/t1"
    found = {(e["text"], e["label"]) for e in body["entities"]}
    assert ("Anna Berg", "PER") in found and ("Oslo", "LOC") in found
    for e in body["entities"]:
        assert SENTENCE[e["start"]:e["end"]] == e["text"] and 0 <= e["score"] <= 1
    assert [t["text"] for t in body["tokens"]] == ["Anna", "Berg", "visited", "Oslo", "on", "Monday", "."]
    for t in body["tokens"]:
        assert SENTENCE[t["start"]:t["end"]] == t["text"]
        assert set(t["probabilities"]) == {"PER", "LOC", "ORG", "MISC", "O"}
        assert abs(sum(t["probabilities"].values()) - 1) < 1e-5


def test_many_texts_come_back_in_input_order(server):
    texts = ["Karl Holt joined Nordbank last year.", "", "Shares of Helix fell.", SENTENCE]
    status, _, body = server.ner({"texts": texts, "tokens": False})
    assert status == 200 and len(body["results"]) == 4
    assert body["results"][1] == {"entities": []}
    for text, result in zip(texts, body["results"]):
        assert "tokens" not in result
        assert all(text[e["start"]:e["end"]] == e["text"] for e in result["entities"])
    assert body["results"][3]["entities"] == server.ner({"text": SENTENCE})[2]["entities"]


def test_plain_text_body_offsets_count_code_points(server):
    text = "🙂 Zoë said Anna Berg visited Oslo."
    status, _, body = server.request("POST", "/v1/ner", text.encode("utf-8"),
                                     {"Content-Type": "text/plain; charset=utf-8"})
    assert status == 200
    assert all(text[e["start"]:e["end"]] == e["text"] for e in body["entities"])
    assert any(e["text"] == "Oslo" for e in body["entities"])


def test_plain_text_body_in_the_charset_it_names(server):
    text = "Zoë Müller visited Köln."
    status, _, body = server.request("POST", "/v1/ner", text.encode("latin-1"),
                                     {"Content-Type": "text/plain; charset=ISO-8859-1"})
    assert status == 200
    assert [t["text"] for t in body["tokens"]] == ["Zoë", "Müller", "visited", "Köln", "."]
    assert all(text[e["start"]:e["end"]] == e["text"] for e in body["entities"])


def test_label_filter_and_threshold(server):
    only = server.ner({"text": SENTENCE, "labels": ["LOC"]})[2]["entities"]
    assert only and all(e["label"] == "LOC" for e in only)
    everything = server.ner({"text": SENTENCE})[2]["entities"]
    cut = (min(e["score"] for e in everything) + max(e["score"] for e in everything)) / 2
    kept = server.ner({"text": SENTENCE, "threshold": cut})[2]["entities"]
    assert kept == [e for e in everything if e["score"] >= cut]


def test_health_readiness_and_model_manifest(server):
    assert server.request("GET", "/healthz")[:1] == (200,)
    status, _, body = server.request("GET", "/readyz")
    assert status == 200 and body["model"]["version"] == "t1"
    status, _, body = server.request("GET", "/v1/model")
    assert status == 200 and body["labels"] == ["LOC", "MISC", "ORG", "PER"] and "config" in body


def test_openapi_and_demo_page_are_served(server):
    status, _, spec = server.request("GET", "/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.") and "/v1/ner" in spec["paths"]
    status, headers, page = server.request("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html") and "v1/ner" in page


def test_metrics_are_summed_across_both_workers(server):
    before = metric(server.request("GET", "/metrics")[2], "nerve_requests_total", route="/v1/ner", status="200")
    n = 300
    with ThreadPoolExecutor(16) as pool:  # concurrent clients, so both workers take connections
        statuses = list(pool.map(lambda _: server.ner({"text": SENTENCE * 20, "tokens": False})[0], range(n)))
    assert statuses == [200] * n
    text = server.request("GET", "/metrics")[2]
    pids = {f.name.rsplit("_", 1)[-1] for f in server.metrics_dir.glob("counter_*.db")}
    assert len(pids) >= 2, "both workers should have answered some of the requests"
    assert metric(text, "nerve_requests_total", route="/v1/ner", status="200") == before + n
    assert metric(text, "nerve_model_info", model="tiny", version="t1") == 1
    assert metric(text, "nerve_tokens_total") >= n * 7 * 20
    assert metric(text, "nerve_entities_total", label="LOC") >= n * 20
    assert metric(text, "nerve_request_duration_seconds_count", route="/v1/ner") >= n


def test_errors_are_counted_and_label_values_stay_few(server):
    for method, path in (("BREW", "/v1/ner"), ("GET", "/v1/ner"), ("GET", "/nothing/here")):
        assert server.request(method, path)[0] in (404, 405)
    text = server.request("GET", "/metrics")[2]
    assert metric(text, "nerve_requests_total", route="/v1/ner", method="other", status="405") >= 1
    assert metric(text, "nerve_requests_total", route="/v1/ner", method="GET", status="405") >= 1
    assert metric(text, "nerve_requests_total", route="unmatched", method="GET", status="404") >= 1
    assert "BREW" not in text and "/nothing/here" not in text


BAD_INPUTS = [
    ("invalid JSON", b'{"text": ', "application/json", 400),
    ("JSON nested 100k deep", b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
    ("top-level list", b'["Anna"]', "application/json", 400),
    ("text is a number", b'{"text": 3}', "application/json", 400),
    ("texts holds a number", b'{"texts": ["a", 3]}', "application/json", 400),
    ("both text and texts", b'{"text": "a", "texts": ["b"]}', "application/json", 400),
    ("neither text nor texts", b'{"tokens": true}', "application/json", 400),
    ("unknown field", b'{"text": "a", "colour": 1}', "application/json", 400),
    ("NaN threshold", b'{"text": "a", "threshold": NaN}', "application/json", 400),
    ("threshold is a string", b'{"text": "a", "threshold": "high"}', "application/json", 400),
    ("tokens is a string", b'{"text": "a", "tokens": "yes"}', "application/json", 400),
    ("invalid UTF-8", b'{"text": "\xff"}', "application/json", 400),
    ("threshold above 1", b'{"text": "a", "threshold": 1.5}', "application/json", 422),
    ("unknown label", b'{"text": "a", "labels": ["DOG"]}', "application/json", 422),
    ("form content type", b"text=a", "application/x-www-form-urlencoded", 415),
    ("no content type", b'{"text": "a"}', None, 415),
    ("unknown charset", b"Anna", "text/plain; charset=klingon", 415),
    ("base64 is no charset", b"QW5uYQ==", "text/plain; charset=base64", 415),
    ("the undefined codec", b"Anna", "text/plain; charset=undefined", 415),
    ("not the charset named", "Zoë".encode(), "text/plain; charset=ascii", 400),
]


@pytest.mark.parametrize("name,body,content_type,expected", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gets_a_json_error_with_the_right_status(server, name, body, content_type, expected):
    status, headers, reply = server.request("POST", "/v1/ner", body,
                                            {"Content-Type": content_type} if content_type else {})
    assert status == expected
    assert headers["content-type"].startswith("application/json")
    assert set(reply["error"]) == {"code", "message"} and "Traceback" not in reply["error"]["message"]


def test_size_limits_answer_413(server):
    assert server.ner({"texts": ["a"] * 257})[0] == 413
    assert server.ner({"text": "a" * 100_001})[0] == 413
    status, _, reply = server.request("POST", "/v1/ner", b'{"text": "' + b"a " * 600_000 + b'"}',
                                      {"Content-Type": "application/json"})
    assert status == 413 and reply["error"]["code"] == "request_entity_too_large"


def test_chunked_body_over_the_limit_answers_413(server):
    head = (b"POST /v1/ner HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"a" * 65536
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(head + b'a\r\n{"text": "\r\n')
        try:  # the server may answer and close before the body ends: that is the point
            for _ in range(40):
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            s.sendall(b'2\r\n"}\r\n0\r\n\r\n')
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = b""
        try:
            while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
                data = s.recv(65536)
                if not data:
                    break
                reply += data
        except ConnectionResetError:
            pass
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"request_entity_too_large" in reply


def test_compressed_bodies_are_refused_so_no_gzip_bomb_is_opened(server):
    bomb = gzip.compress(b'{"text": "' + b"a" * 10_000_000 + b'"}')
    status, _, reply = server.request("POST", "/v1/ner", bomb,
                                      {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert status == 415 and reply["error"]["code"] == "unsupported_encoding"


def test_unknown_routes_and_methods_are_json(server):
    status, headers, reply = server.request("GET", "/nope")
    assert status == 404 and reply["error"]["code"] == "not_found"
    status, headers, reply = server.request("GET", "/v1/ner")
    assert status == 405 and "POST" in headers["allow"] and reply["error"]["code"] == "method_not_allowed"


def test_garbage_on_the_socket_never_yields_a_500(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
        reply = s.recv(200)
    assert not reply.startswith(b"HTTP/1.1 5")


def test_unready_when_the_model_is_bad_but_alive(tmp_path, tiny_model_dir):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.json").write_text("{not json")
    s = Server(tmp_path, model_dir=bad, wait_ready=False)
    try:
        assert s.request("GET", "/healthz")[0] == 200
        status, _, body = s.request("GET", "/readyz")
        assert status == 503 and "not valid JSON" in body["reason"]
        status, _, body = s.ner({"text": "Anna"})
        assert status == 503 and body["error"]["code"] == "model_unavailable"
    finally:
        assert s.stop() == 0


def test_api_keys_guard_the_api_but_not_health_or_metrics(tmp_path, tiny_model_dir):
    s = Server(tmp_path, model_dir=tiny_model_dir, NERVE_API_KEYS="k1,k2")
    try:
        assert s.ner({"text": SENTENCE})[0] == 401
        assert s.ner({"text": SENTENCE}, {"X-API-Key": "wrong"})[0] == 401
        assert s.ner({"text": SENTENCE}, {"X-API-Key": "k2"})[0] == 200
        assert s.ner({"text": SENTENCE}, {"Authorization": "Bearer k1"})[0] == 200
        for path in ("/healthz", "/readyz", "/metrics"):
            assert s.request("GET", path)[0] == 200
    finally:
        s.stop()


def test_cors_is_off_unless_configured(server):
    _, headers, _ = server.ner({"text": "a"}, {"Origin": "https://example.org"})
    assert "access-control-allow-origin" not in headers


def test_the_readme_serve_command_serves_the_default_model(tmp_path):
    from conftest import DEFAULT_MODEL

    if not (DEFAULT_MODEL / "model.json").exists():
        pytest.fail("models/default is missing: the shipped model must be in the repository")
    s = Server(tmp_path)
    try:
        status, _, body = s.ner({"text": "Angela Merkel visited Paris on Tuesday."})
        assert status == 200
        assert {(e["text"], e["label"]) for e in body["entities"]} >= {("Angela Merkel", "PER"), ("Paris", "LOC")}
    finally:
        assert s.stop() == 0
