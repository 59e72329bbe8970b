"""The user's dictionary (NERVE_DICTIONARY): read again whenever the file changes, without a restart.

A request looks at the file (one stat call, at most every half second); a changed file is read and
checked whole before anything switches, so a bad one is refused with the line it fails at and the
previous dictionary keeps serving. The model a request gets carries the dictionary of the moment:
a model swapped in takes the current dictionary before it answers anything.
"""
import os
import threading
import time

from model.artifact import atomic_write
from model.dictionary import Dictionary, DictionaryError, read_bytes
from service import metrics
from service.model_store import CHECK_SECONDS, file_stamp


class DictionaryStore:
    """With a state directory, the last file that passed is kept there: a worker started while the
    file is bad (a recycled or crashed one) serves that, as the others do, not no dictionary at all."""

    def __init__(self, path, state_dir=None):
        self.path = path or None
        self.kept = os.path.join(state_dir, "dictionary.jsonl") if state_dir and self.path else None
        self.current, self.error, self._seen, self._next_check = None, None, None, 0.0
        self._lock = threading.Lock()
        self.refresh(force=True)

    def refresh(self, force=False):
        """Read the file again if it changed since it was last read."""
        if not self.path:
            return
        now = time.monotonic()
        if not force and now < self._next_check:
            return
        self._next_check = now + CHECK_SECONDS
        stamp = file_stamp(self.path)
        if stamp == self._seen and not force:
            return
        with self._lock:
            self._seen = stamp
            try:
                data = read_bytes(self.path)
                new = Dictionary.parse(data, self.path)
            except DictionaryError as e:
                self.error = f"dictionary refused, the previous one keeps serving: {e}"
                metrics.DICTIONARY_RELOADS.labels("refused").inc()
                if self.current is None:
                    self._take_kept()
                return
            if self.kept:
                atomic_write(self.kept, data)
            metrics.show_dictionary(self.current, new)
            self.current, self.error = new, None
            metrics.DICTIONARY_RELOADS.labels("loaded").inc()

    def _take_kept(self):
        """The last good file, as accepted by a worker before this one."""
        if not self.kept:
            return
        try:
            kept = Dictionary.parse(read_bytes(self.kept), self.path)
        except DictionaryError:
            return
        metrics.show_dictionary(None, kept)
        self.current = kept

    def apply(self, model):
        """Give ``model`` the current dictionary, if it does not have it yet."""
        self.refresh()
        wanted = self.current
        if model is None or model.dictionary is wanted or model.dictionary_refused is wanted:
            return
        try:
            model.use_dictionary(wanted)
        except DictionaryError as e:
            model.dictionary_refused = wanted
            self.error = f"dictionary refused for model {model.name}/{model.version}: {e}"
            metrics.DICTIONARY_RELOADS.labels("refused").inc()

    def describe(self, model):
        """What /v1/model says of the dictionary."""
        if not self.path:
            return None
        d = model.dictionary if model is not None else None
        return {"path": self.path, "version": d.version if d else None, "entries": len(d) if d else 0,
                "forced": sum(1 for e in d.entries if e[4]) if d else 0, "error": self.error}

