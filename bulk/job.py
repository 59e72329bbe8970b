"""The job: shards of input handed to workers (local processes, or Ray actors: ``bulk.ray_job``), each
loading the model once, each shard written whole under a temporary name and renamed when complete.

A shard's output (``part-NNNNN.jsonl`` or ``.conll``) and its account (``part-NNNNN.stats.json``:
documents, tokens, entities per label, skipped records) are written together; the output's rename
is the commit point. A rerun after a crash or Ctrl-C finds the finished shards and skips them, so
its output is exactly that of an uninterrupted run. ``job.json`` records what the job is (inputs,
options, model); a rerun with other inputs or options into the same folder is refused.
"""
import concurrent.futures
import heapq
import itertools
import json
import os
from collections import Counter

from bulk.formats import NEEDS_TOKENS, RENDER, SUFFIX, least_sure_sentences, shard
from bulk.sources import BadRecord, kind_of, parse
from model.artifact import atomic_write
from model.dictionary import Dictionary
from model.predict import Model, annotate

_model = None
PASS_TOKENS = 16384  # no request waits behind a pass here: larger passes cost less per token (4x the service's)
# A job reads millions of words: the terms of 4x the service's most frequent words stored (98 MB for
# the shipped model), so fewer windows need a product of their own.
STORED_ROWS = 16384


def _load(model_dir):
    global _model
    _model = Model.load(model_dir, STORED_ROWS)


def shard_name(index, output_format):
    return f"part-{index:05d}.{SUFFIX[output_format]}"


def tag_shard(index, units, options, out_dir):
    """Tag one shard in this (worker) process and commit its files; returns (its stats, None)."""
    stats, payload = render_shard(index, units, options)
    commit_shard(out_dir, index, options["format"], stats, payload)
    return stats, None


def render_shard(index, units, options):
    """(stats, output bytes) of one shard's units, tagged by the model this process loaded. With
    ``select`` the stats keep the shard's ``select`` least sure sentences as candidates."""
    if options.get("dictionary") and _model.dictionary is None:  # checked by the job before any shard
        _model.use_dictionary(Dictionary.parse(options["dictionary"]["data"].encode("utf-8"),
                                               options["dictionary"]["path"]))
    docs, stats = [], {"shard": index, "documents": 0, "tokens": 0, "entities": Counter(), "skipped": []}
    for path, lineno, raw in units:
        try:
            parsed = parse(path, lineno, raw, kind_of(path, options["input_format"]), options["text_field"],
                           options["id_field"], options["max_chars"], options["per_file"])
        except BadRecord as e:
            if options["strict"]:
                raise
            stats["skipped"].append(str(e))
            continue
        if parsed is not None:
            docs.append(parsed)
    fmt, select = options["format"], options.get("select", 0)
    need_tokens = options["tokens"] or fmt in NEEDS_TOKENS or select
    results, n_tokens = annotate([text for _, text in docs], _model, tokens=need_tokens, pass_tokens=PASS_TOKENS)
    parts, candidates = [], []
    version = f"{_model.name} {_model.version}"
    for (doc_id, text), result in zip(docs, results):
        stats["entities"].update(e["label"] for e in result["entities"])
        sentences = least_sure_sentences(text, result) if select or fmt == "label-studio" else []
        confidence = min(s[0] for s in sentences) if sentences else None
        parts.append(RENDER[fmt](doc_id, text, result, tokens=options["tokens"], model_version=version,
                                 confidence=confidence))
        if select:
            candidates += [[c, doc_id, n, sent, ents] for n, (c, sent, ents) in enumerate(sentences)]
    stats.update(documents=len(docs), tokens=n_tokens, entities=dict(sorted(stats["entities"].items())))
    if select:
        stats["candidates"] = heapq.nsmallest(select, candidates, key=lambda c: c[0])
    # backslashreplace: only a lone surrogate (JSON text may hold one) cannot be UTF-8; CoNLL shows it escaped
    return stats, shard(fmt, parts).encode("utf-8", "backslashreplace")


def commit_shard(out_dir, index, output_format, stats, payload):
    """The shard's account, then its output: the output's rename is the commit point."""
    atomic_write(os.path.join(out_dir, f"part-{index:05d}.stats.json"), json.dumps(stats).encode())
    atomic_write(os.path.join(out_dir, shard_name(index, output_format)), payload)


def write_selected(out_dir, all_stats, select, output_format, model_version):
    """The ``select`` least sure sentences of the whole job, least sure first, as a file of the job's
    pre-annotation format (``selected.jsonl`` or ``selected.json``); returns its path."""
    chosen = heapq.nsmallest(select, (c for s in all_stats for c in s.get("candidates", [])), key=lambda c: c[0])
    parts = []
    for confidence, doc_id, n, text, entities in chosen:
        result = {"entities": entities}
        parts.append(RENDER[output_format](f"{doc_id}#{n}", text, result, model_version=model_version,
                                           confidence=confidence))
    path = os.path.join(out_dir, f"selected.{SUFFIX[output_format]}")
    atomic_write(path, shard(output_format, parts).encode("utf-8", "backslashreplace"))
    return path


def check_job(out_dir, description):
    """Write job.json for a new job; for an existing one, refuse if it was another job."""
    path = os.path.join(out_dir, "job.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            before = json.load(f)
        if before != description:
            flat = {**{k: v for k, v in before.items() if k != "options"}, **before.get("options", {})}
            now = {**{k: v for k, v in description.items() if k != "options"}, **description["options"]}
            changed = sorted(k for k in set(flat) | set(now) if flat.get(k) != now.get(k))
            raise ValueError(f"{out_dir} holds another job's output (it differs in {', '.join(changed)}): "
                             "use another --out, or delete it to start again")
        return True
    os.makedirs(out_dir, exist_ok=True)
    atomic_write(path, json.dumps(description, indent=2).encode("utf-8"))
    return False


def clean_partial(out_dir):
    """Temporary files of shards a killed run left unfinished."""
    for name in os.listdir(out_dir):
        if name.startswith(".tmp-"):
            os.unlink(os.path.join(out_dir, name))


def done_shards(out_dir, output_format):
    """Indices of the shards whose output was committed."""
    suffix = "." + SUFFIX[output_format]
    return {int(n[5:10]) for n in os.listdir(out_dir) if n.startswith("part-") and n.endswith(suffix)}


def read_stats(out_dir, index):
    with open(os.path.join(out_dir, f"part-{index:05d}.stats.json"), encoding="utf-8") as f:
        return json.load(f)


def run_local(units, out_dir, model_dir, options, workers, shard_size, on_shard=None):
    """``run`` with ``workers`` local processes, each loading the model once and committing its shards."""
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, initializer=_load,
                                                initargs=(model_dir,)) as pool:
        return run(units, out_dir, options, workers, shard_size,
                   lambda index, chunk: pool.submit(tag_shard, index, chunk, options, out_dir), on_shard)


def run(units, out_dir, options, workers, shard_size, submit, on_shard=None):
    """Tag every shard not yet done, ``workers`` at a time; returns the stats of all shards.

    units: an iterator of (path, line, raw); memory holds at most about 2 x workers shards of it.
    submit(index, chunk): a concurrent.futures.Future of (stats, output bytes, or None once committed
    where it ran); bytes are committed here. on_shard(stats, already_done) is called as each shard
    finishes (or is found finished)."""
    finished = done_shards(out_dir, options["format"])
    shards = enumerate(iter(lambda: list(itertools.islice(units, shard_size)), []))
    all_stats, pending = {}, set()

    def collect(futures):
        for future in futures:
            stats, payload = future.result()
            if payload is not None:
                commit_shard(out_dir, stats["shard"], options["format"], stats, payload)
            all_stats[stats["shard"]] = stats
            if on_shard:
                on_shard(stats, False)

    for index, chunk in shards:
        if index in finished:
            all_stats[index] = read_stats(out_dir, index)
            if on_shard:
                on_shard(all_stats[index], True)
            continue
        pending.add(submit(index, chunk))
        if len(pending) >= 2 * workers:  # keep the corpus streaming: only a few shards in memory
            done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            collect(done)
    collect(concurrent.futures.as_completed(pending))
    return [all_stats[i] for i in sorted(all_stats)]
