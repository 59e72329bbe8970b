"""doccano's own auto-labelling pipeline (auto-labeling-pipeline) against a live nerve, with the
configuration docs/annotation-tools.md gives (docs/doccano-auto-labeling.json)."""
import json
import subprocess

from annotation_tools import annotation_tools_venv

from conftest import ROOT

KEY = "doccano-key"
TEXTS = ["Anna Berg flew from Oslo to Paris .", "🙂 Lars Holm met Anna Berg in Bergen .", "nothing here .",
         'He said "Oslo" twice : Oslo .']


def test_doccanos_pipeline_labels_spans_from_nerve(tiny_model_dir, tmp_path):
    from server import Server

    python = annotation_tools_venv() / "python"
    nerve = Server(tmp_path, model_dir=tiny_model_dir, NERVE_API_KEYS=KEY)
    try:
        out = subprocess.run([str(python), str(ROOT / "tests" / "doccano_pipeline.py"),
                              str(ROOT / "docs" / "doccano-auto-labeling.json"),
                              f"http://127.0.0.1:{nerve.port}/v1/ner", KEY],
                             input=json.dumps(TEXTS), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        labelled = json.loads(out.stdout)
        expected = []
        for text in TEXTS:
            _, _, answer = nerve.ner({"text": text, "tokens": False}, {"X-API-Key": KEY})
            expected.append(sorted((e["start"], e["end"], e["label"]) for e in answer["entities"]))
        got = [sorted((x["start_offset"], x["end_offset"], x["label"]) for x in labels) for labels in labelled]
        assert got == expected and any(got)
        failed = subprocess.run([str(python), str(ROOT / "tests" / "doccano_pipeline.py"),
                                 str(ROOT / "docs" / "doccano-auto-labeling.json"),
                                 f"http://127.0.0.1:{nerve.port}/v1/ner", "wrong-key"],
                                input=json.dumps(TEXTS[:1]), capture_output=True, text=True, timeout=120)
        assert failed.returncode == 0 and json.loads(failed.stdout) == [[]]  # a 401's error holds no entities
    finally:
        nerve.stop()
