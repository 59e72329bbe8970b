"""The model a worker serves, swappable while requests run.

A request takes ``store.current`` once and uses that object to the end, so a swap never changes
the model under a request in flight. Swaps load and check the new artifact completely first;
a bad one is refused and the old model keeps serving.
"""
import json
import os
import threading

from model.artifact import ArtifactError, atomic_write
from model.predict import Model
from service import metrics


class ModelStore:
    def __init__(self, path, control_file=None):
        self.path = path
        self.current = None
        self.error = None
        self.control_file = control_file
        self._control_seen = None
        self._lock = threading.Lock()
        try:
            self._swap(Model.load(path), path)
        except ArtifactError as e:
            self.error = str(e)
        self.refresh()

    def _swap(self, model, path):
        old, self.current, self.path, self.error = self.current, model, path, None
        metrics.show_model(old, model)

    def reload(self, path=None):
        """Load ``path`` (default: the current directory again) and switch to it; ArtifactError if unusable.

        The switch is announced through the control file so the other workers follow it.
        """
        path = path or self.path
        with self._lock:
            try:
                model = Model.load(path)
            except ArtifactError:
                metrics.MODEL_RELOADS.labels("refused").inc()
                raise
            self._swap(model, path)
            metrics.MODEL_RELOADS.labels("loaded").inc()
            if self.control_file:
                note = {"path": os.path.abspath(path), "sha256": model.manifest["sha256"]}
                atomic_write(self.control_file, json.dumps(note).encode())
                self._control_seen = self._stamp()
        return model

    def _stamp(self):
        try:
            st = os.stat(self.control_file)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def refresh(self):
        """Follow a swap another worker announced; one stat call when nothing changed."""
        if not self.control_file:
            return
        stamp = self._stamp()
        if stamp is None or stamp == self._control_seen:
            return
        with self._lock:
            self._control_seen = stamp
            try:
                with open(self.control_file, "rb") as f:
                    note = json.loads(f.read())
                if self.current is not None and note.get("sha256") == self.current.manifest["sha256"]:
                    return
                self._swap(Model.load(note["path"]), note["path"])
            except (OSError, ValueError, KeyError, ArtifactError):
                pass  # the announcing worker checked it; a file gone since then leaves us as we were
