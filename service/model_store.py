"""The model a worker serves, swappable while requests run.

A request takes ``store.current`` once and uses that object to the end, so a swap never changes
the model under a request in flight. A swap loads and checks the new artifact completely first; a
bad one is refused and the old model keeps serving.

With a state directory (NERVE_STATE_DIR), every model that passes is copied into it under the hash
of its manifest, and ``model.json`` there names the copy: the one all workers serve. Workers follow
that note (a request looks at it if no request has in the last half second), and workers started
later (a SIGHUP restart, a respawn) load the copy, so they serve the last good model even if the
original directory has since gone bad.
"""
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time

from model.artifact import MANIFEST, ArtifactError, atomic_write, read_manifest
from model.predict import Model
from service import metrics


def _identity(directory):
    with open(os.path.join(directory, MANIFEST), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def snapshot(model_dir, state_dir):
    """Copy a model into the state directory and load the copy; returns (Model, copy path).

    The copy is checked as fully as any load, so what is served is exactly what was checked.
    """
    read_manifest(model_dir)  # a clear refusal before any copying
    models = os.path.join(state_dir, "models")
    os.makedirs(models, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=models)
    try:
        manifest = read_manifest(model_dir)
        for name in (MANIFEST, manifest["weights"]):
            try:
                shutil.copyfile(os.path.join(model_dir, name), os.path.join(tmp, name))
            except OSError as e:
                raise ArtifactError(f"cannot copy {name} from {model_dir} ({e.strerror})") from None
        model = Model.load(tmp)
        dest = os.path.join(models, _identity(tmp))
        try:
            os.rename(tmp, dest)
        except OSError:  # the same model is already there (another worker got there first)
            shutil.rmtree(tmp, ignore_errors=True)
        return model, dest
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def announce(model_dir, state_dir, note="model.json"):
    """Check ``model_dir`` and make it the model every worker serves (the copy ``note``, a path in
    ``state_dir``, names); ArtifactError if it is unusable."""
    model, copy = snapshot(model_dir, state_dir)
    record = {"path": copy, "source": os.path.abspath(model_dir), "version": model.version}
    path = os.path.join(state_dir, note)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write(path, json.dumps(record).encode())
    return model, copy


def announced(note_path):
    """The path of the copy a note names; OSError, ValueError or KeyError if there is none."""
    with open(note_path, "rb") as f:
        return json.loads(f.read())["path"]


CHECK_SECONDS = 0.5


def file_stamp(path):
    """What changes when a file is rewritten or replaced: (mtime, size, inode); None if it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ModelStore:
    def __init__(self, path, state_dir=None):
        self.path, self.state_dir = path, state_dir or None
        self.current, self.error = None, None
        self._note = os.path.join(self.state_dir, "model.json") if self.state_dir else None
        self._seen = None
        self._next_check = 0.0
        self._lock = threading.Lock()
        if self._note and os.path.exists(self._note):
            self.refresh()
        if self.current is None:
            try:
                self._swap(*self._check(path))
            except ArtifactError as e:
                self.error = str(e)

    def _check(self, path):
        """(model, the directory it is served from): its checked copy when there is a state directory."""
        return announce(path, self.state_dir) if self.state_dir else (Model.load(path), path)

    def _swap(self, model, path):
        old, self.current, self.path, self.error = self.current, model, path, None
        metrics.show_model(old, model)

    def reload(self, path=None):
        """Load ``path`` (default: the directory first served) and switch every worker to it."""
        path = path or self.path
        with self._lock:
            try:
                model, copy = self._check(path)
            except ArtifactError:
                name = self.current.name if self.current is not None else os.path.basename(os.path.abspath(path))
                metrics.child(metrics.MODEL_RELOADS, name, "refused").inc()
                raise
            self._seen = self._stamp()
            self._swap(model, copy)
            metrics.child(metrics.MODEL_RELOADS, model.name, "loaded").inc()
        return model

    def _stamp(self):
        return file_stamp(self._note)

    def refresh(self):
        """Follow a switch announced by another worker or the master; one stat call when none was,
        and none when the last check was under CHECK_SECONDS ago."""
        if not self._note:
            return
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + CHECK_SECONDS
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return
        with self._lock:
            self._seen = stamp
            try:
                path = announced(self._note)
                if path != self.path or self.current is None:
                    self._swap(Model.load(path), path)
            except (OSError, ValueError, KeyError, ArtifactError):
                pass  # the announcer checked it; if it has gone since, keep serving what we have
