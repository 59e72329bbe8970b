#!/bin/sh
# Start nerve under gunicorn. The metrics directory is wiped here, before any Python starts,
# so samples of earlier runs never mix into this one.
set -eu
cd "$(dirname "$0")/.."
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/nerve-metrics}"
export NERVE_STATE_DIR="${NERVE_STATE_DIR:-/tmp/nerve-state}"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" "$NERVE_STATE_DIR"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR" "$NERVE_STATE_DIR"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
exec gunicorn --config deploy/gunicorn.conf.py "$@"
