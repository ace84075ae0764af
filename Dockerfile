# Two images from one file (docker-compose.yml builds both, by target):
#
#   api     the HTTP API and the one-shot commands (`arena migrate`, `arena keys`): Arena without torch, PyGAD,
#           pycma and gymnasium, which the API process never imports (tests/test_compose.py checks that what
#           this stage installs covers every module an API process loads, and that torch is not among them)
#   worker  the workers: everything, torch's CPU build included
#
# `docker build .` builds the last stage, `worker`: the full image (every `arena` command works in it).
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Nothing here needs root. ARENA_DATA_DIR is only used without DATABASE_URL/BROKER_URL (embedded mode).
RUN useradd --create-home --uid 10001 arena && mkdir -p /app/var && chown arena /app/var
ENV ARENA_DATA_DIR=/app/var

COPY pyproject.toml README.md ./


# The dependencies both images share: pyproject.toml's, less the training stack (WORKER_ONLY), so that
# changing the code does not reinstall them. The project itself is installed editable, without
# dependencies, against a placeholder package: the code copied later is the code that runs.
FROM base AS api-dependencies
ARG WORKER_ONLY="torch pygad cma gymnasium"
RUN python -c 'import re, sys, tomllib; skip = set(sys.argv[1:]); deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; print("\n".join(d for d in deps if re.match(r"[A-Za-z0-9._-]+", d).group(0).lower() not in skip))' $WORKER_ONLY > api-requirements.txt \
    && pip install -r api-requirements.txt \
    && mkdir arena && touch arena/__init__.py && pip install --no-deps -e . && rm -r arena api-requirements.txt


FROM api-dependencies AS api
COPY arena ./arena
USER arena
EXPOSE 8000
CMD ["arena", "api"]


FROM api-dependencies AS worker
# torch first, in a layer of its own, from the CPU index: PyPI's default build bundles CUDA (several GB),
# and no Arena run uses a GPU. The pin matches pyproject.toml, so the install below keeps this build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
# The rest of pyproject.toml's dependencies (PyGAD, pycma, gymnasium), against the placeholder again.
RUN mkdir arena && touch arena/__init__.py && pip install -e . && rm -r arena
COPY arena ./arena
USER arena
CMD ["arena", "--help"]
