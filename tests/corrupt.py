"""Ways to break a copy of an artifact, each named, for the tests that must see them refused."""
import io
import json
import os

import numpy as np

from model import artifact


def weights_path(directory):
    return directory / json.loads((directory / "model.json").read_text())["weights"]


def rewrite_npz(directory, change):
    """Rewrite the weights with ``change(arrays)`` applied and the manifest's checksum updated,
    so that only the content checks can refuse it."""
    path = weights_path(directory)
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    set_checksum(directory, buf.getvalue())


def set_checksum(directory, data):
    manifest = json.loads((directory / "model.json").read_text())
    manifest["sha256"] = artifact._sha256(data)
    (directory / "model.json").write_text(json.dumps(manifest))


class _Payload:
    """Unpickling this would run a command: the loader must never get that far."""

    marker = "/tmp/nerve-unpickled"

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def flip_a_byte(d):
    data = bytearray(weights_path(d).read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights_path(d).write_bytes(bytes(data))


def truncate(d):
    weights_path(d).write_bytes(weights_path(d).read_bytes()[:1000])


def truncate_with_matching_checksum(d):
    truncate(d)
    set_checksum(d, weights_path(d).read_bytes())


def empty(d):
    weights_path(d).write_bytes(b"")


KINDS = {
    # name: (how to break it, words the refusal must contain)
    "corrupt": (flip_a_byte, ["sha256", "corrupt"]),
    "truncated": (truncate, ["sha256", "truncated"]),
    "truncated, checksum updated": (truncate_with_matching_checksum, ["not a readable npz"]),
    "empty": (empty, ["sha256"]),
    "checksum mismatch": (lambda d: set_checksum(d, b"other"), ["sha256", "does not match"]),
    "NaN": (lambda d: rewrite_npz(d, lambda a: a["W"].__setitem__((0, 0), np.nan)), ["'W'", "NaN"]),
    "wrong shape": (lambda d: rewrite_npz(d, lambda a: a.__setitem__("U", a["U"][:-1])), ["'U'", "shape"]),
    "wrong dtype": (lambda d: rewrite_npz(d, lambda a: a.__setitem__("b", a["b"].astype(np.float64))),
                    ["'b'", "float64"]),
    "pickled": (lambda d: rewrite_npz(d, lambda a: a.__setitem__("c", np.array([_Payload()], dtype=object))),
                ["pickled"]),
    "manifest not JSON": (lambda d: (d / "model.json").write_text("{not json"), ["not valid JSON"]),
}
