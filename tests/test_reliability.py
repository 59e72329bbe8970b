"""Load, faults and hostile input against a real gunicorn on 127.0.0.1; bounded in count and time."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from corrupt import KINDS
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from benchmarks.slow_clients import PATTERNS, SlowClients, normal_requests, summary
from model.predict import predict
from server import Load, Server, metric, rss_kib, wait_for

pytestmark = pytest.mark.slow
SENTENCE = "Anna Berg visited Oslo on Monday ."
BATCH = {"texts": [SENTENCE * 3] * 16, "tokens": False}



HOSTILE = st.one_of(
    st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=300),
    st.lists(st.sampled_from(["\u0301", "\u200d", "\u202e", "\u202d", "\x00", "\ud800", "\udfff", "🙂",
                              "👩‍👩‍👧", "\n", " ", "\t", "Anna", ".", "'s", "n't", "\ufeff", "\u3000"]),
             max_size=80).map("".join),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=HOSTILE)
def test_any_unicode_gives_offsets_that_slice_back(tiny_model, text):
    result = predict([text], tiny_model, explain=True)[0]
    for t in result["tokens"]:
        assert text[t["start"]:t["end"]] == t["text"]
        assert abs(sum(t["probabilities"].values()) - 1) < 1e-5
    for e in result["entities"]:
        assert text[e["start"]:e["end"]] == e["text"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=HOSTILE)
@example(text="Anna Berg\ud800\udfff met Anna Berg .")
def test_any_unicode_over_http_never_gives_a_5xx(server, text):
    status, _, body = server.ner({"text": text})
    assert status == 200, body
    # Offsets index the text as the server reads the JSON: there an escaped high and low surrogate
    # side by side are one character, as JSON says, where the Python string held two.
    received = json.loads(json.dumps(text))
    assert all(received[e["start"]:e["end"]] == e["text"] for e in body["entities"])


@pytest.mark.parametrize("text", ["a" * 100_000, "\u0301" * 100_000, ("x" * 999 + " ") * 100,
                                  "'" * 100_000, "1," * 50_000, " " * 100_000, "U." * 50_000])
def test_a_100k_character_text_is_answered_within_the_request_timeout(server, text):
    status, _, body = server.request("POST", "/v1/ner", {"text": text, "tokens": False}, timeout=20)
    assert status == 200 and "entities" in body


def test_kill_9_of_a_worker_mid_load_loses_only_requests_on_that_worker(tmp_path, tiny_model_dir):
    s = Server(tmp_path, model_dir=tiny_model_dir, NERVE_THREADS=4)
    try:
        load = Load(s, BATCH, threads=8, count=1500)
        assert wait_for(lambda: len(load.outcomes) >= 100)
        victim = s.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        outcomes = load.wait()
        failed = [o for o in outcomes if o[0] != 200]
        # At most what that worker held: its 4 threads' requests plus connections it had accepted.
        assert len(failed) <= 8, failed
        assert wait_for(lambda: len(s.worker_pids()) == 2 and victim not in s.worker_pids())
        assert s.ner({"text": SENTENCE})[0] == 200
        print(f"kill -9: {len(outcomes)} requests, {len(failed)} failed, worker respawned")
    finally:
        s.stop()


def test_sigterm_drains_readiness_first_and_completes_accepted_requests(tmp_path, tiny_model_dir):
    s = Server(tmp_path, model_dir=tiny_model_dir, NERVE_DRAIN_SECONDS=2, NERVE_GRACEFUL_TIMEOUT=10)
    load = Load(s, BATCH, threads=8, count=100_000)
    assert wait_for(lambda: len(load.outcomes) >= 100)
    started = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    # A load balancer stops sending once readiness says 503; that is what the clients do here.
    assert wait_for(lambda: s.request("GET", "/readyz")[0] == 503, timeout=2)
    load.stop()
    outcomes = load.wait()
    code = s.proc.wait(timeout=20)
    elapsed = time.monotonic() - started
    lost = [o for o in outcomes if o[0] != 200]
    assert code == 0 and elapsed < 2 + 10, (code, elapsed)
    assert lost == [], lost
    print(f"SIGTERM: {len(outcomes)} requests, none lost, exit 0 after {elapsed:.1f} s")
    s.log.close()


def test_overload_answers_503_with_retry_after_not_a_timeout(tmp_path, tiny_model_dir):
    s = Server(tmp_path, model_dir=tiny_model_dir, NERVE_MAX_IN_FLIGHT=1, NERVE_THREADS=8)
    try:
        big = {"texts": [SENTENCE * 10] * 64, "tokens": False}
        outcomes = Load(s, big, threads=24, count=240, timeout=30).wait()
        statuses = [o[0] for o in outcomes]
        assert set(statuses) <= {200, 503}, set(statuses)
        assert statuses.count(503) > 0 and statuses.count(200) > 0
        assert all(o[2] == "1" for o in outcomes if o[0] == 503)
        rejected = metric(s.request("GET", "/metrics")[2], "nerve_rejected_total", reason="overload")
        assert rejected == statuses.count(503)
        print(f"overload: {statuses.count(200)} served, {statuses.count(503)} turned away with Retry-After")
    finally:
        s.stop()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_broken_artifact_at_start_up_leaves_the_service_alive_and_unready(tmp_path, tiny_model_dir, kind):
    broken = tmp_path / "model"
    shutil.copytree(tiny_model_dir, broken)
    breaks, words = KINDS[kind]
    breaks(broken)
    s = Server(tmp_path, model_dir=broken, wait_ready=False, NERVE_WORKERS=1)
    try:
        assert s.request("GET", "/healthz")[0] == 200
        status, _, body = s.request("GET", "/readyz")
        assert status == 503 and all(w in body["reason"] for w in words), body
    finally:
        s.stop()


def test_soak_20000_requests_at_32_connections(tmp_path, tiny_model_dir):
    s = Server(tmp_path, model_dir=tiny_model_dir, NERVE_THREADS=8, NERVE_MAX_IN_FLIGHT=32)
    try:
        assert Load(s, {"text": SENTENCE}, threads=32, count=2000).wait()  # warm up
        workers = s.worker_pids()
        before = {pid: rss_kib(pid) for pid in workers}
        outcomes = Load(s, {"text": SENTENCE}, threads=32, count=20_000).wait()
        after = {pid: rss_kib(pid) for pid in workers}
        errors = [o for o in outcomes if o[0] != 200]
        assert len(outcomes) == 20_000 and errors == []
        assert sorted(s.worker_pids()) == sorted(workers)
        for pid in workers:
            assert after[pid] <= before[pid] * 1.10, (before, after)
        print(f"soak: 20000 requests, 0 errors; RSS per worker KiB before {before} after {after}")
    finally:
        s.stop()


def test_recycled_workers_keep_counts_and_a_bounded_metrics_directory(tmp_path, tiny_model_dir):
    s = Server(tmp_path, model_dir=tiny_model_dir, NERVE_MAX_REQUESTS=200, NERVE_THREADS=2)
    try:
        files = []
        for _ in range(5):
            outcomes = Load(s, {"text": SENTENCE}, threads=4, count=600).wait()
            assert all(o[0] == 200 for o in outcomes)
            files.append(len(list(s.metrics_dir.iterdir())))
        text = s.request("GET", "/metrics")[2]
        assert metric(text, "nerve_requests_total", route="/v1/ner", status="200") == 3000
        assert max(files) <= files[0] + 6, files  # at most one more worker's files in passing
        print(f"recycling: 3000 requests over ~15 worker lifetimes, metrics files {files}")
    finally:
        s.stop()


HALF_SENT = ("headers", "body", "short", "stalled")
DEADLINES = dict(NERVE_READ_TIMEOUT=1, NERVE_READ_TOTAL_TIMEOUT=3, NERVE_KEEPALIVE=1)


@pytest.fixture(scope="module")
def deadline_server(tiny_model_dir, tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("deadlines"), model_dir=tiny_model_dir, **DEADLINES)
    yield s
    s.stop()


def test_half_sent_requests_hold_no_thread_and_are_cut_off_with_408(deadline_server):
    s = deadline_server
    slow = SlowClients(s.port, 80, HALF_SENT, trickle=0.5, limit=15)
    time.sleep(0.3)
    # 8 threads in all: with a thread held per slow connection, none of these could be answered.
    normal = normal_requests(s.port, 60, timeout=5, pause=0.02)
    outcomes = slow.outcomes()
    assert [status for status, _ in normal] == [200] * 60, normal
    assert len(outcomes) == 80 and all(status == 408 for _, status, _ in outcomes), summary(outcomes)
    for pattern, _, seconds in outcomes:
        # A byte now and then meets the pause bound and is cut by the total one; a stall by the pause.
        bound = DEADLINES["NERVE_READ_TOTAL_TIMEOUT"] if PATTERNS[pattern][1] else DEADLINES["NERVE_READ_TIMEOUT"]
        assert bound - 0.3 <= seconds <= bound + 1.5, (pattern, seconds)
    text = s.request("GET", "/metrics")[2]
    assert metric(text, "nerve_connections_cut_total", reason="read_timeout") >= 80
    print(f"slow clients: 60 of 60 normal requests answered beside 80 half-sent ones, {summary(outcomes)}")


def test_idle_connections_are_closed_after_the_keepalive_or_the_read_timeout(deadline_server):
    import http.client
    import socket

    conn = http.client.HTTPConnection("127.0.0.1", deadline_server.port, timeout=10)
    conn.request("GET", "/healthz")
    assert conn.getresponse().read()
    fresh = socket.create_connection(("127.0.0.1", deadline_server.port), timeout=10)
    started = time.monotonic()
    assert conn.sock.recv(1) == b""  # closed by the server after NERVE_KEEPALIVE
    kept = time.monotonic() - started
    assert fresh.recv(1) == b""  # a connection that never sent a byte: after NERVE_READ_TIMEOUT
    silent = time.monotonic() - started
    conn.close()
    fresh.close()
    assert 0.7 <= kept <= 2.5 and 0.7 <= silent <= 2.5, (kept, silent)


def test_a_flood_of_connections_past_the_cap_makes_room_and_probes_keep_answering(tmp_path, tiny_model_dir):
    cap = 16
    s = Server(tmp_path, model_dir=tiny_model_dir, NERVE_MAX_CONNECTIONS=cap, NERVE_READ_TIMEOUT=30,
               NERVE_READ_TOTAL_TIMEOUT=60)
    try:
        slow = SlowClients(s.port, 150, ("stalled", "headers", "idle"), trickle=1, limit=30)
        time.sleep(0.5)
        normal = normal_requests(s.port, 40, timeout=5)
        probes = [s.request("GET", path, timeout=5)[0] for path in ("/healthz", "/readyz") * 5]
        outcomes = slow.outcomes(stop=True)
        text = s.request("GET", "/metrics")[2]
    finally:
        s.stop()
    assert [status for status, _ in normal] == [200] * 40, normal
    assert probes == [200] * 10
    statuses = [status for _, status, _ in outcomes]
    assert set(statuses) <= {503, "closed", "open"} and statuses.count(503) >= 150 // 2, summary(outcomes)
    assert statuses.count("open") <= 2 * cap, summary(outcomes)
    evicted = sum(metric(text, "nerve_connections_cut_total", reason=r) for r in ("idle_evicted", "reader_evicted"))
    assert evicted >= 150 - 2 * cap
    print(f"flood past the cap: 40 of 40 requests and 10 of 10 probes answered; {summary(outcomes)}")


def test_bandit_finds_no_issue_in_the_code():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-m", "bandit", "-q", "-r", "model", "training", "service", "deploy",
                          "-s", "B101"], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_pip_audit_of_the_pinned_requirements():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-m", "pip_audit", "--no-deps", "--disable-pip", "--progress-spinner",
                          "off", "-r", "requirements.txt", "-r", "requirements-train.txt"],
                         cwd=root, capture_output=True, text=True, timeout=300)
    if out.returncode != 0 and ("Connection" in out.stderr or "resolve" in out.stderr.lower()):
        pytest.skip(f"pip-audit could not reach the vulnerability service: {out.stderr.strip()[-200:]}")
    assert out.returncode == 0, out.stdout + out.stderr
