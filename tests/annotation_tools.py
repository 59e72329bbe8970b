"""The virtual environment of the annotation tools the tests run against nerve (Label Studio, doccano's
auto-labelling pipeline), made once from requirements-annotation-tools.txt; tests skip, saying why,
where it cannot be made."""
import hashlib
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

VENV = ROOT / ".annotation-tools" / "venv"
REQUIREMENTS = ROOT / "requirements-annotation-tools.txt"


def annotation_tools_venv():
    """The environment's bin folder, made (or brought up to date) from the requirements."""
    stamp = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    marker = VENV / ".requirements"
    if (VENV / "bin" / "label-studio").exists() and marker.exists() and marker.read_text() == stamp:
        return VENV / "bin"
    shutil.rmtree(VENV, ignore_errors=True)
    base = getattr(sys, "_base_executable", sys.executable)
    steps = ([base, "-m", "venv", str(VENV)],
             [str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)])
    for step in steps:
        out = subprocess.run(step, capture_output=True, text=True, timeout=1200)
        if out.returncode:
            pytest.skip(f"the annotation tools cannot be installed here ({' '.join(step[:3])}...): {out.stderr[-300:]}")
    marker.write_text(stamp)
    return VENV / "bin"
