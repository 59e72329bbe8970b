"""The demo page in headless Chromium (Debian's chromium package): it loads, tags a sentence and
highlights an entity. Skipped where no browser is installed."""
import re
import shutil
import subprocess
import urllib.parse

import pytest

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(BROWSER is None, reason="no Chromium on this machine (Debian: apt-get install chromium)")
def test_demo_page_tags_a_sentence_and_highlights_its_entities(server, tmp_path):
    query = urllib.parse.urlencode({"text": "Anna Berg visited Oslo on Monday."})
    out = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
         f"http://127.0.0.1:{server.port}/?{query}"],
        capture_output=True, text=True, timeout=120)
    dom = out.stdout
    assert 'id="output"' in dom, out.stderr[-2000:]
    assert 'data-done="1"' in dom, "the page did not finish tagging"
    marks = re.findall(r'<mark class="(\w+)" data-label="(\w+)"[^>]*>(.*?)<span class="lbl">', dom)
    highlighted = {(label, re.sub(r"<[^>]+>", "", inner).strip()) for _, label, inner in marks}
    assert ("LOC", "Oslo") in highlighted and ("PER", "Anna Berg") in highlighted, highlighted
