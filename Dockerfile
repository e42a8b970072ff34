# syntax=docker/dockerfile:1
# The production image: `docker build -t motcua .` (see README, Production). Dependencies come
# only from requirements.lock, checked by hash; the runtime stage gets the finished venv alone.

FROM python:3.11-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /venv
WORKDIR /src
COPY requirements.lock ./
# The lock holds the build backend (setuptools) too, so the package below builds without
# fetching anything unpinned.
RUN /venv/bin/pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot bot
COPY handlers handlers
COPY knowledge knowledge
COPY storage storage
# The message catalogs are compiled (.mo) where the installed package reads them, so no .po is
# compiled at each start (knowledge/i18n.py); -I keeps the sources here off sys.path. pip and
# setuptools are not needed at run time.
RUN /venv/bin/pip install --no-deps --no-build-isolation . \
 && /venv/bin/python -I -c 'from knowledge.i18n import write_compiled; write_compiled()' \
 && /venv/bin/python -m pip uninstall --quiet --yes pip setuptools

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent motcua \
 && install -d -o motcua -g motcua /data
COPY --from=builder /venv /venv
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 MOTCUA_HOST=0.0.0.0 MOTCUA_PORT=8080
# The working directory: a .env file is read from here, and the SQLite file lives here when
# DATABASE_URL is unset (production sets it to PostgreSQL).
WORKDIR /data
USER motcua
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('MOTCUA_PORT', '8080') + '/healthz', timeout=4)"]
CMD ["python", "-m", "bot", "serve"]
