"""Tag a whole corpus disk-to-disk: files in, JSONL (or CoNLL) shards out, resumable."""
