# nerve: named-entity recognition over HTTP.
#   docker build -t nerve .                  the service, with the default model baked in
#   docker build --target train -t nerve-train .   the trainer, for data mounted at run time

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin nerve
WORKDIR /app

FROM base AS deps
COPY requirements.txt ./
RUN python -m venv /opt/venv && pip install --no-cache-dir -r requirements.txt

FROM deps AS train-deps
COPY requirements-train.txt ./
RUN pip install --no-cache-dir -r requirements-train.txt

FROM base AS train
COPY --from=train-deps /opt/venv /opt/venv
COPY model/ model/
COPY training/ training/
USER 10001
ENTRYPOINT ["python", "-m", "training.train"]
CMD ["--help"]

FROM base AS runtime
COPY --from=deps /opt/venv /opt/venv
COPY model/ model/
COPY service/ service/
COPY deploy/entrypoint.sh deploy/gunicorn.conf.py deploy/
COPY models/default/ models/default/
USER 10001
ENV PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/nerve-metrics \
    NERVE_STATE_DIR=/tmp/nerve-state
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PORT', '8000'), timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["deploy/entrypoint.sh"]
