"""The models a worker serves, by name: one (NERVE_MODEL), or every model folder of NERVE_MODELS,
and a candidate version of one of them (NERVE_CANDIDATE) tried on a share of its traffic.

Each folder is watched on its own: a request looks at most every half second (one scandir and a
stat per file), and a folder whose files changed is loaded and checked whole before it replaces
what it served; a bad folder is reported by name while the others, and its own last good version,
keep serving. A model name is served from one folder: a second folder claiming it is refused (at
start, the service does not start). With a state directory, every version accepted is copied there
(model_store.snapshot), so a worker started later serves it even if its folder has gone bad since.
"""
import hashlib
import os
import threading
import time

from model.artifact import MANIFEST, ArtifactError, named_folders
from model.predict import Model
from service import metrics
from service.model_store import CHECK_SECONDS, ModelStore, announce, announced, file_stamp


class ConfigError(RuntimeError):
    """Settings the service cannot start with."""


class UnknownModel(LookupError):
    """A request named a model (or version) that is not served."""


def folder_stamp(folder):
    """What changes when any file of a model folder is written, replaced or removed."""
    try:
        return tuple(sorted((e.name, file_stamp(e.path)) for e in os.scandir(folder) if e.is_file()))
    except OSError:
        return None


class WatchedFolder:
    """One model folder: the version it last passed with (``model``), and ``error`` if its files
    as they are now were refused."""

    def __init__(self, folder, state_dir=None):
        self.folder, self.state_dir = os.path.abspath(folder), state_dir or None
        self.model, self.error, self.stamp = None, None, None
        key = hashlib.sha256(self.folder.encode()).hexdigest()[:16]
        self.note = os.path.join("served", f"{key}.json")

    def check(self, accept=None):
        """Load the folder again if its files changed; True if the served version changed.
        ``accept(model)`` may refuse a model that loads, with a message."""
        stamp = folder_stamp(self.folder)
        if stamp == self.stamp:
            return False
        self.stamp = stamp
        try:
            model = self._load()
            refusal = accept(model) if accept else None
            if refusal:
                raise ArtifactError(refusal)
        except ArtifactError as e:
            self.error = str(e)
            metrics.child(metrics.MODEL_RELOADS, self.name or os.path.basename(self.folder), "refused").inc()
            if self.model is None:
                self.model = self._last_good()
                return self.model is not None
            return False
        old, self.model, self.error = self.model, model, None
        metrics.show_model(old, model)
        metrics.child(metrics.MODEL_RELOADS, model.name, "loaded").inc()
        return True

    @property
    def name(self):
        return self.model.name if self.model is not None else None

    def _load(self):
        if self.state_dir:
            return announce(self.folder, self.state_dir, self.note)[0]
        return Model.load(self.folder)

    def _last_good(self):
        """The copy a worker accepted before, when the folder is bad now (a worker started later)."""
        if not self.state_dir:
            return None
        try:
            return Model.load(announced(os.path.join(self.state_dir, self.note)))
        except (OSError, ValueError, KeyError, ArtifactError):
            return None

    def forget(self):
        """The folder is gone: its version is no longer announced to workers started later."""
        if self.state_dir:
            try:
                os.unlink(os.path.join(self.state_dir, self.note))
            except OSError:
                pass
        metrics.show_model(self.model, None)


def parse_candidate(setting):
    """NAME=DIR of NERVE_CANDIDATE as (name, dir), or None when unset."""
    if not setting:
        return None
    name, sep, folder = setting.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise ConfigError(f"NERVE_CANDIDATE={setting!r}: expected NAME=DIR, the model's name and the candidate's "
                          "folder")
    return name.strip(), folder.strip()


def check_settings(environ):
    """ConfigError for settings no worker could start with: NERVE_MODELS not a folder, two of its
    folders naming the same model, a bad NERVE_CANDIDATE or share. Reads manifests only."""
    parse_candidate(environ.get("NERVE_CANDIDATE", ""))
    check_share(environ.get("NERVE_CANDIDATE_SHARE", "0.1"))
    models_dir = environ.get("NERVE_MODELS")
    if not models_dir:
        return
    if not os.path.isdir(models_dir):
        raise ConfigError(f"NERVE_MODELS={models_dir!r} is not a folder")
    try:
        named_folders(models_dir)
    except ArtifactError as e:
        raise ConfigError(f"NERVE_MODELS: {e}") from None


def check_share(value):
    try:
        share = float(value)
    except (TypeError, ValueError):
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"NERVE_CANDIDATE_SHARE={value!r}: a share between 0 and 1 is expected")
    return share


class ModelRegistry:
    """Models by name. ``model_dir``: NERVE_MODEL (a folder, or with ``models_dir`` a folder or the
    name of the default); ``explicit``: whether it was set rather than defaulted."""

    def __init__(self, model_dir, models_dir="", state_dir="", explicit=True, candidate="", share=0.1):
        self.models_dir, self.state_dir = models_dir or None, state_dir or None
        self.folders = {}                      # folder path -> WatchedFolder
        self.lock = threading.Lock()
        self._next_scan = 0.0
        self.default_name = self.default_folder = None
        self.single = None                     # the NERVE_MODEL folder: a ModelStore, as with one model
        inside = self.models_dir and os.path.abspath(os.path.dirname(os.path.abspath(model_dir))) \
            == os.path.abspath(self.models_dir)
        if explicit and inside:
            self.default_folder = os.path.abspath(model_dir)
        elif not self.models_dir or (explicit and os.path.isdir(model_dir)):
            self.single = ModelStore(model_dir, state_dir)
        elif explicit:
            self.default_name = model_dir
        if self.models_dir:
            if not os.path.isdir(self.models_dir):
                raise ConfigError(f"NERVE_MODELS={self.models_dir!r} is not a folder")
            self.scan(start=True)
        self.share = check_share(share)
        parsed = parse_candidate(candidate)
        self.candidate_name = parsed[0] if parsed else None
        self.candidate = WatchedFolder(parsed[1]) if parsed else None
        if self.candidate:
            self.candidate.check()
            if self.candidate.model is not None and self.candidate.model.name != self.candidate_name:
                raise ConfigError(f"NERVE_CANDIDATE: the folder {parsed[1]} holds model "
                                  f"{self.candidate.model.name!r}, not {self.candidate_name!r}")

    # -- the folders of NERVE_MODELS ----------------------------------------------------------
    def scan(self, start=False):
        """Pick up folders added, changed and removed; at most every CHECK_SECONDS."""
        now = time.monotonic()
        if not start and now < self._next_scan:
            return
        with self.lock:
            self._next_scan = now + CHECK_SECONDS
            try:
                found = sorted(e.path for e in os.scandir(self.models_dir) if e.is_dir()
                               and not e.name.startswith(".") and os.path.exists(os.path.join(e.path, MANIFEST)))
            except OSError:
                found = list(self.folders)   # the folder is unreadable for a moment: keep what is served
            for folder in set(self.folders) - {os.path.abspath(f) for f in found}:
                self.folders.pop(folder).forget()
            for folder in found:
                watched = self.folders.get(os.path.abspath(folder))
                if watched is None:
                    watched = self.folders[os.path.abspath(folder)] = WatchedFolder(folder, self.state_dir)
                watched.check(accept=lambda m, w=watched: self._clash(m, w, start))

    def _clash(self, model, watched, start):
        other = next((w.folder for w in self.folders.values() if w is not watched and w.name == model.name), None)
        if other is None and self.single is not None and self.single.current is not None \
                and self.single.current.name == model.name:
            other = self.single.path
        if other is None:
            return None
        message = f"model name {model.name!r} is served from {other} already; {watched.folder} is refused"
        if start:
            raise ConfigError(f"NERVE_MODELS: {message} (each model folder needs a name of its own)")
        return message

    # -- lookup --------------------------------------------------------------------------------
    def served(self):
        """{name: Model} of every model being served now."""
        out = {w.name: w.model for w in self.folders.values() if w.model is not None}
        if self.single is not None and self.single.current is not None:
            out[self.single.current.name] = self.single.current
        return out

    def default(self):
        """The name of the model a request without a choice gets (None if there is none yet)."""
        if self.single is not None:
            return self.single.current.name if self.single.current is not None else None
        if self.default_name:
            return self.default_name
        if self.default_folder:
            watched = self.folders.get(self.default_folder)
            return watched.name if watched is not None else None
        by_folder = {os.path.basename(w.folder): w.name for w in self.folders.values() if w.model is not None}
        return by_folder.get("default") or (min(by_folder.values()) if by_folder else None)

    def refresh(self):
        if self.single is not None:
            self.single.refresh()
        if self.models_dir:
            self.scan()
        if self.candidate is not None and time.monotonic() >= self.candidate_next:
            self.candidate_next = time.monotonic() + CHECK_SECONDS
            with self.lock:
                self.candidate.check(accept=self._candidate_name_check)

    candidate_next = 0.0

    def _candidate_name_check(self, model):
        if model.name != self.candidate_name:
            return f"the candidate folder holds model {model.name!r}, not {self.candidate_name!r}"
        return None

    def get(self, choice=None):
        """The Model for ``choice`` ("NAME", "NAME/VERSION" or None: the default); UnknownModel if not served."""
        self.refresh()
        served = self.served()
        name, _, version = (choice or "").partition("/")
        name = name or self.default()
        model = served.get(name)
        if model is None:
            if choice is None:
                return None
            raise UnknownModel(f"no model {name!r} is served; models: {sorted(served)}")
        if not version or version == model.version:
            return model
        candidate = self.candidate_model(name)
        if candidate is not None and candidate.version == version:
            return candidate
        versions = [model.version] + ([candidate.version] if candidate is not None else [])
        raise UnknownModel(f"model {name!r} has no version {version!r}; served: {versions}")

    def candidate_model(self, name):
        if self.candidate is None or name != self.candidate_name:
            return None
        return self.candidate.model

    def problems(self):
        """{what: message} of every configured model that serves no valid version, for readiness."""
        out = {}
        if self.single is not None and self.single.current is None:
            out[self.single.path] = self.single.error
        for w in self.folders.values():
            if w.model is None:
                out[os.path.basename(w.folder)] = w.error
        if self.models_dir and not self.served():
            out[self.models_dir] = "no model folder in NERVE_MODELS"
        default = self.default()
        if self.models_dir and default not in self.served():
            wanted = default or os.path.basename(self.default_folder or "")
            out["default"] = f"the default model {wanted!r} is not served"
        return out

    def folder_errors(self):
        """{name or folder: message} of folders whose files as they are now were refused."""
        return {(w.name or os.path.basename(w.folder)): w.error for w in self.folders.values() if w.error}
