"""The training report: metrics.json, PNG plots, and one self-contained HTML page beside them."""
import base64
import html
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from model.artifact import atomic_write  # noqa: E402
from model.decode import (
    split_tag,  # noqa: E402
    to_iob2,  # noqa: E402
)


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_history(history, path):
    epochs = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(epochs, [h["loss"] for h in history], marker="o")
    a.set(title="training loss", xlabel="epoch", ylabel="cross-entropy")
    b.plot(epochs, [h["dev"]["f1"] for h in history], marker="o", color="tab:green")
    b.set(title="dev entity F1", xlabel="epoch", ylabel="F1")
    _save(fig, path)


def plot_confusion(gold, pred, types, path):
    """Token-level confusion of entity types (gold rows, predicted columns), row-normalised."""
    index = {t: i for i, t in enumerate(types)}
    counts = np.zeros((len(types), len(types)), dtype=int)
    for g, p in zip(gold, pred):
        counts[index[g], index[p]] += 1
    norm = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.6, 4))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set(xticks=range(len(types)), yticks=range(len(types)), xticklabels=types, yticklabels=types,
           xlabel="predicted", ylabel="gold", title="token entity types (dev)")
    for i in range(len(types)):
        for j in range(len(types)):
            ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    _save(fig, path)
    return counts


def plot_reliability(calib, path):
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, part, title in ((axes[0], "all_tokens", "all tokens"), (axes[1], "entity_tokens", "entity tokens")):
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
        for stage, color in (("before", "tab:red"), ("after", "tab:blue")):
            r = calib[stage][part]
            keep = np.array(r["count"]) > 0
            ax.plot(np.array(r["confidence"])[keep], np.array(r["accuracy"])[keep], marker="o", color=color,
                    label=f"{stage} (T={calib[stage]['temperature']:.2f}) ECE {r['ece']:.4f}")
        ax.set(title=f"reliability: {title}", xlabel="confidence of top tag", ylabel="accuracy",
               xlim=(0, 1), ylim=(0, 1))
        ax.legend(fontsize=7, loc="upper left")
    _save(fig, path)


def worst_errors(sentences, pred_tags, probs, labels, radius=2, limit=30):
    """The dev tokens the model got wrong most confidently, each with its context window."""
    rows = []
    for s, tags, p in zip(sentences, pred_tags, probs):
        for t, (g, y) in enumerate(zip(s.tags, tags)):
            if split_tag(g)[1] != split_tag(y)[1]:
                lo, hi = max(0, t - radius), min(len(s.words), t + radius + 1)
                rows.append({"confidence": float(p[t].max()), "word": s.words[t], "gold": g, "predicted": y,
                             "window": s.words[lo:t] + [f"[{s.words[t]}]"] + s.words[t + 1: hi]})
    rows.sort(key=lambda r: -r["confidence"])
    return rows[:limit]


def _img(path):
    with open(path, "rb") as f:
        return f'<img src="data:image/png;base64,{base64.b64encode(f.read()).decode()}">'


def robustness_table(robust):
    """HTML rows: F1 per casing of the input, overall and per type, on tokens and on raw text."""
    types = sorted({t for kind in robust.values() for r in kind.values() for t in r["per_type"]})
    head = "".join(f"<th>{html.escape(t)}</th>" for t in types)
    rows = ""
    for kind, title in (("casing", "tokens"), ("raw", "raw text")):
        for casing, r in robust.get(kind, {}).items():
            cells = "".join(f"<td>{r['per_type'].get(t, {}).get('f1', 0.0):.4f}</td>" for t in types)
            rows += (f"<tr><td>{html.escape(casing)}</td><td>{title}</td><td>{r['overall']['precision']:.4f}</td>"
                     f"<td>{r['overall']['recall']:.4f}</td><th>{r['overall']['f1']:.4f}</th>{cells}</tr>")
    return (f"<table><tr><th>casing</th><th>input</th><th>P</th><th>R</th><th>F1</th>{head}</tr>{rows}</table>")


def write(out_dir, model, dev_sentences, history, calib, manifest, robust=None):
    """Write out_dir/report/{metrics.json, *.png, report.html}; ``robust``: ``training.evaluate.robustness``."""
    folder = os.path.join(out_dir, "report")
    os.makedirs(folder, exist_ok=True)
    tag_ids, probs = model.tag_sentences([s.words for s in dev_sentences])
    pred = [to_iob2([model.labels[i] for i in ids]) for ids in tag_ids]
    types = model.types + ["O"]
    gold_types = [split_tag(t)[1] or "O" for s in dev_sentences for t in s.tags]
    pred_types = [split_tag(t)[1] or "O" for tags in pred for t in tags]

    paths = {k: os.path.join(folder, f"{k}.png") for k in ("curves", "confusion", "reliability")}
    plot_history(history, paths["curves"])
    confusion = plot_confusion(gold_types, pred_types, types, paths["confusion"])
    plot_reliability(calib, paths["reliability"])
    errors = worst_errors(dev_sentences, pred, probs, model.labels)

    metrics = {"model": {"name": manifest["name"], "version": manifest["version"]},
               "dev": manifest["metrics"]["dev"], "history": history, "calibration": calib,
               "confusion": {"types": types, "counts": confusion.tolist()}, "worst_errors": errors,
               "training": manifest["training"], "robustness": robust}
    atomic_write(os.path.join(folder, "metrics.json"), json.dumps(metrics, indent=2).encode())

    dev = manifest["metrics"]["dev"]
    table = "".join(
        f"<tr><td>{html.escape(t)}</td><td>{r['precision']:.4f}</td><td>{r['recall']:.4f}</td>"
        f"<td>{r['f1']:.4f}</td><td>{r['support']}</td></tr>" for t, r in sorted(dev["per_type"].items()))
    o = dev["overall"]
    table += f"<tr><th>overall</th><th>{o['precision']:.4f}</th><th>{o['recall']:.4f}</th><th>{o['f1']:.4f}</th>"
    table += "<th></th></tr>"
    err_rows = "".join(
        f"<tr><td>{e['confidence']:.3f}</td><td>{html.escape(' '.join(e['window']))}</td>"
        f"<td>{html.escape(e['gold'])}</td><td>{html.escape(e['predicted'])}</td></tr>" for e in errors)
    c = manifest["calibration"]
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>nerve training report</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}img{{max-width:100%}}</style></head><body>
<h1>Training report: {html.escape(manifest['name'])} {html.escape(manifest['version'])}</h1>
<p>{manifest['training']['epochs']} epochs, {manifest['training']['seconds']} s.</p>
<h2>Dev entity scores (conlleval, exact match)</h2><table><tr><th>type</th><th>precision</th><th>recall</th>
<th>F1</th><th>support</th></tr>{table}</table>
<h2>Robustness: the dev split re-cased, and as raw text</h2><p>Every word lower-cased, upper-cased
or title-cased; "raw text" is the split turned back into ordinary text and tagged through the service's
own tokenizer, entities matched by exact character spans. F1 per type after the overall figures.</p>
{robustness_table(robust) if robust else "<p>not measured</p>"}
<h2>Curves</h2>{_img(paths['curves'])}
<h2>Confusion of entity types (tokens)</h2>{_img(paths['confusion'])}
<h2>Calibration</h2><p>Temperature {c['temperature']:.3f} fitted on dev. ECE (15 bins, top tag):
all tokens {c['ece_before']:.4f} &rarr; {c['ece_after']:.4f}; entity tokens {c['entity_ece_before']:.4f}
&rarr; {c['entity_ece_after']:.4f}. Measured on halves of dev the temperature was not fitted on (2-fold):
all tokens {c['ece_held_out']:.4f}, entity tokens {c['entity_ece_held_out']:.4f}.</p>{_img(paths['reliability'])}
<h2>Most confident errors on dev</h2><table><tr><th>confidence</th><th>window</th><th>gold</th><th>predicted</th>
</tr>{err_rows}</table></body></html>"""
    atomic_write(os.path.join(folder, "report.html"), page.encode("utf-8"))
