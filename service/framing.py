"""Where an HTTP/1.1 request ends in the bytes received so far (RFC 9112 section 6).

The worker reads every request whole on its event loop before a thread is given to it, so it must
know when the request is complete: headers up to the empty line, then a body of Content-Length
bytes or chunks up to the last one. Everything else about the request (its validity, the meaning
of its headers) is left to gunicorn's parser, which reads the bytes found here."""
from dataclasses import dataclass

INCOMPLETE = "incomplete"  # more bytes needed
COMPLETE = "complete"      # the request is data[:end]
UNFRAMED = "unframed"      # headers end at ``end`` but the body's length cannot be known: the parser refuses it
TOO_LARGE = "too_large"    # the body is over the limit
HEADERS_TOO_LARGE = "headers_too_large"

MAX_CHUNK_LINE = 4096


@dataclass(frozen=True)
class Frame:
    state: str
    end: int = 0
    expects_continue: bool = False  # headers complete, body awaited, client waits for "100 Continue"


def frame(data, max_header_bytes, max_body_bytes):
    """The state of the first request in ``data`` (bytes or bytearray)."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return Frame(HEADERS_TOO_LARGE if len(data) > max_header_bytes else INCOMPLETE)
    body_start = head_end + 4
    if body_start > max_header_bytes:
        return Frame(HEADERS_TOO_LARGE)
    fields = header_fields(bytes(data[:head_end]))
    encodings, lengths = fields.get(b"transfer-encoding"), fields.get(b"content-length")
    if encodings is not None:
        codings = [c.strip().lower() for c in b",".join(encodings).split(b",")]
        if lengths is not None or codings[-1] != b"chunked":
            return Frame(UNFRAMED, body_start)
        end = chunked_end(data, body_start, max_body_bytes)
        if isinstance(end, Frame):
            return end
        return Frame(COMPLETE, end) if end else Frame(INCOMPLETE, 0, expects(fields, data, body_start))
    if lengths is None:
        return Frame(COMPLETE, body_start)
    values = {v.strip() for v in b",".join(lengths).split(b",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        return Frame(UNFRAMED, body_start)
    length = int(next(iter(values)))
    if length > max_body_bytes:
        return Frame(TOO_LARGE, body_start)
    if len(data) >= body_start + length:
        return Frame(COMPLETE, body_start + length)
    return Frame(INCOMPLETE, 0, expects(fields, data, body_start))


def header_fields(head):
    """{lower-cased name: [values]} of the header block (request line first, left out)."""
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields.setdefault(name.strip().lower(), []).append(value.strip())
    return fields


def expects(fields, data, body_start):
    """Whether the client waits for "100 Continue" before sending its body (and has sent none)."""
    wanted = [v.lower() for v in fields.get(b"expect", [])] == [b"100-continue"]
    return wanted and len(data) == body_start


def chunked_end(data, pos, max_body_bytes):
    """End of a chunked body starting at ``pos``: an index, 0 while incomplete, or a Frame refusing it."""
    start = pos
    while True:
        line_end = data.find(b"\r\n", pos, pos + MAX_CHUNK_LINE)
        if line_end < 0:
            return Frame(UNFRAMED, start) if len(data) - pos >= MAX_CHUNK_LINE else 0
        size = bytes(data[pos:line_end]).split(b";")[0].strip()
        n = int(size, 16) if size and all(c in b"0123456789abcdefABCDEF" for c in size) else -1
        if n < 0:
            return Frame(UNFRAMED, start)
        pos = line_end + 2
        if n == 0:
            if data[pos:pos + 2] == b"\r\n":
                return pos + 2
            trailers = data.find(b"\r\n\r\n", pos)
            if trailers < 0:
                return Frame(UNFRAMED, start) if len(data) - pos > MAX_CHUNK_LINE else 0
            return trailers + 4
        if pos + n - start > max_body_bytes:
            return Frame(TOO_LARGE, start)
        if len(data) < pos + n + 2:
            return 0
        if data[pos + n:pos + n + 2] != b"\r\n":
            return Frame(UNFRAMED, start)
        pos += n + 2
