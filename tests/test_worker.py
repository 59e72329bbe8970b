"""The worker that reads requests whole: framing of the bytes received, and HTTP/1.1 over a real gunicorn."""
import json
import re
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import framing

LIMITS = dict(max_header_bytes=65536, max_body_bytes=1000)
BODY = json.dumps({"text": "Anna Berg visited Oslo ."}).encode()


def post(body, extra=b""):
    return (b"POST /v1/ner HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def chunked(body, sizes):
    out, pos = [], 0
    for n in sizes:
        piece, pos = body[pos:pos + n], pos + n
        if piece:
            out.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
    out.append(b"%x\r\n" % len(body[pos:]) + body[pos:] + b"\r\n" if body[pos:] else b"")
    head = b"POST /v1/ner HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + b"".join(out) + b"0\r\n\r\n"


REQUESTS = st.one_of(
    st.binary(max_size=200).map(post),
    st.tuples(st.binary(max_size=200), st.lists(st.integers(1, 50), max_size=5)).map(lambda a: chunked(*a)),
    st.just(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
)


@settings(max_examples=200, deadline=None)
@given(requests=st.lists(REQUESTS, min_size=1, max_size=4), cut=st.integers(0, 10_000))
def test_every_request_of_a_stream_is_found_whole_and_no_sooner(requests, cut):
    stream = b"".join(requests)
    cut = min(cut, len(stream))
    found, data = [], bytearray(stream)
    while data:
        f = framing.frame(data, **LIMITS)
        assert f.state == framing.COMPLETE
        found.append(bytes(data[:f.end]))
        del data[:f.end]
    assert found == requests
    # Any prefix that stops before the first request's end is incomplete.
    if cut < len(requests[0]):
        assert framing.frame(stream[:cut], **LIMITS).state == framing.INCOMPLETE


def test_lengths_it_cannot_trust_are_left_to_the_parser_to_refuse():
    for extra in (b"Content-Length: 3\r\nContent-Length: 4\r\n", b"Content-Length: -1\r\n",
                  b"Transfer-Encoding: gzip\r\n", b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n"):
        data = b"POST / HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\nab"
        assert framing.frame(data, **LIMITS).state == framing.UNFRAMED, extra


def test_bodies_and_headers_over_the_limits_are_known_before_they_arrive():
    assert framing.frame(post(b"x" * 1001)[:-1001], **LIMITS).state == framing.TOO_LARGE
    big_chunk = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % 5000
    assert framing.frame(big_chunk, **LIMITS).state == framing.TOO_LARGE
    assert framing.frame(b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000, **LIMITS).state == framing.HEADERS_TOO_LARGE


def test_expect_100_continue_is_seen_while_the_body_is_awaited():
    head = post(BODY, b"Expect: 100-continue\r\n")[:-len(BODY)]
    assert framing.frame(head, **LIMITS).expects_continue
    assert not framing.frame(head + BODY[:3], **LIMITS).expects_continue


def exchange(server, data, read_until=None, timeout=10):
    """Send raw bytes, read what comes back until the server closes or ``read_until`` answers arrived."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        while read_until is None or got.count(b"HTTP/1.1 ") < read_until:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


@pytest.mark.slow
def test_pipelined_requests_are_answered_in_order_on_one_connection(server):
    got = exchange(server, post(BODY) + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + post(b"{}"), read_until=3)
    statuses = [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", got)]
    assert statuses == [200, 200, 400], got[:500]
    assert got.index(b'"entities"') < got.index(b'"status":"ok"')


@pytest.mark.slow
def test_a_chunked_body_is_read_whole(server):
    got = exchange(server, chunked(BODY, [3, 7, 1]).replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n"))
    assert got.startswith(b"HTTP/1.1 200") and b'"Anna Berg"' in got, got[:300]


@pytest.mark.slow
def test_expect_100_continue_gets_its_interim_answer_before_the_body(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(post(BODY, b"Expect: 100-continue\r\nConnection: close\r\n")[:-len(BODY)])
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(BODY)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    assert got.startswith(b"HTTP/1.1 200") and got.count(b"100 Continue") == 0, got[:300]


@pytest.mark.slow
def test_a_body_over_the_limit_is_refused_before_it_is_sent(server):
    head = (b"POST /v1/ner HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 50000000\r\n\r\n")
    got = exchange(server, head)
    assert got.startswith(b"HTTP/1.1 413") and b'"request_entity_too_large"' in got, got
