"""The same job on Ray Data, for a cluster: JSONL records read by ``read_json``, tagged by a pool of
actors that each load the model once (``map_batches``), written back by ``write_json``.

Inputs and output may be local paths or object-store URIs (``s3://``, ``gs://``) that every node can
read; the model directory must be readable by every node (baked into the image, or on a shared
volume). Records need an id field: Ray reads rows, not lines, so a record is named by its own id.
Ray writes its own file names, one or more files per block, in no fixed order; each record is
``{"id", "entities"[, "tokens"]}`` as the local tagger and the HTTP API give it.
"""


class Tagger:
    """One actor: a model, loaded once, tagging batches of records."""

    def __init__(self, model_dir, text_field, id_field, tokens):
        from bulk.job import STORED_ROWS
        from model.predict import Model

        self.model = Model.load(model_dir, STORED_ROWS)
        self.text_field, self.id_field, self.tokens = text_field, id_field, tokens

    def __call__(self, batch):
        import pandas as pd

        from bulk.job import PASS_TOKENS
        from model.predict import annotate

        results, _ = annotate(list(batch[self.text_field]), self.model, tokens=self.tokens, pass_tokens=PASS_TOKENS)
        out = {"id": list(batch[self.id_field]), "entities": [r["entities"] for r in results]}
        if self.tokens:
            out["tokens"] = [r["tokens"] for r in results]
        return pd.DataFrame(out)


def run(inputs, out, model_dir, text_field, id_field, tokens, workers, address=None, batch_size=256):
    """Tag JSONL ``inputs`` into ``out`` on the Ray cluster at ``address`` (None: a local one)."""
    import os

    import ray

    # A local Ray gets a CPU more than the actors take: reading and writing need one of their own.
    local = {} if address else {"num_cpus": max(os.cpu_count() or 1, workers + 1)}
    ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True, **local)
    try:
        ds = ray.data.read_json(inputs, lines=True)
        missing = {text_field, id_field} - set(ds.schema().names)
        if missing:
            raise ValueError(f"the records have no {', '.join(sorted(missing))} field")
        ds = ds.map_batches(Tagger, fn_constructor_args=(model_dir, text_field, id_field, tokens),
                            concurrency=workers, batch_size=batch_size, batch_format="pandas")
        ds.write_json(out)
    finally:
        ray.shutdown()
