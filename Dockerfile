# Two images from one file (docker-compose.yml builds both, by target):
#
#   api     the HTTP API and the one-shot commands (`arena migrate`, `arena keys`): Arena without torch, PyGAD,
#           pycma and gymnasium, which the API process never imports (tests/test_compose.py checks that what
#           this stage installs covers every module an API process loads, and that torch is not among them)
#   worker  the workers: everything, torch's CPU build included
#
# `docker build .` builds the last stage, `worker`: the full image (every `arena` command works in it).
#
# Build arguments (docker-compose.yml passes each from an ARENA_* variable; the defaults are the normal build, and
# docs/operations.md has the recipe for a machine that reaches no container registry):
#   PYTHON_IMAGE     the base image: any Python 3.11 with `python` and `pip` on PATH (default python:3.11-slim)
#   TORCH_INDEX_URL  where torch's CPU build comes from (default PyTorch's CPU index); empty: the normal index
#                    (with PIP_FIND_LINKS pointing at a wheelhouse that holds torch 2.13.0+cpu)
#   PIP_INDEX_URL, PIP_FIND_LINKS, PIP_TRUSTED_HOST   pip's own variables: a package index mirror, a wheelhouse
#                    (a URL the build reaches), a host pip may use over plain HTTP
#   CA_CERTIFICATES  PEM text of extra certificate authorities pip must trust (an HTTPS proxy's); build only
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE} AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Nothing here needs root. ARENA_DATA_DIR is only used without DATABASE_URL/BROKER_URL (embedded mode).
RUN useradd --create-home --uid 10001 arena && mkdir -p /app/var && chown arena /app/var
ENV ARENA_DATA_DIR=/app/var

# pip's bundle plus the extra authorities, in a pip configuration the final stages remove.
ARG CA_CERTIFICATES=""
RUN if [ -n "$CA_CERTIFICATES" ]; then \
        bundle=/usr/local/share/arena-build-ca.pem \
        && cat "$(python -c 'import pip._vendor.certifi as c; print(c.where())')" > "$bundle" \
        && printf '%s\n' "$CA_CERTIFICATES" >> "$bundle" \
        && printf '[global]\ncert = %s\n' "$bundle" > /etc/pip.conf; \
    fi

# Only the project file: the code and README.md come last, so that editing them reuses every layer below.
COPY pyproject.toml ./


# The dependencies both images share: pyproject.toml's, less the training stack (WORKER_ONLY), so that
# changing the code does not reinstall them. The project itself is installed editable, without
# dependencies, against a placeholder package: the code copied later is the code that runs.
FROM base AS api-dependencies
ARG WORKER_ONLY="torch pygad cma gymnasium"
ARG PIP_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_TRUSTED_HOST
RUN python -c 'import re, sys, tomllib; skip = set(sys.argv[1:]); deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; print("\n".join(d for d in deps if re.match(r"[A-Za-z0-9._-]+", d).group(0).lower() not in skip))' $WORKER_ONLY > api-requirements.txt \
    && pip install -r api-requirements.txt \
    && mkdir arena && touch arena/__init__.py README.md && pip install --no-deps -e . && rm -r arena README.md api-requirements.txt


FROM api-dependencies AS api
RUN rm -f /etc/pip.conf /usr/local/share/arena-build-ca.pem
COPY README.md ./
COPY arena ./arena
USER arena
EXPOSE 8000
CMD ["arena", "api"]


FROM api-dependencies AS worker
# torch first, in a layer of its own, from the CPU index: PyPI's default build bundles CUDA (several GB),
# and no Arena run uses a GPU. The pin matches pyproject.toml, so the install below keeps this build.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_TRUSTED_HOST
RUN pip install torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
# The rest of pyproject.toml's dependencies (PyGAD, pycma, gymnasium), against the placeholder again.
RUN mkdir arena && touch arena/__init__.py README.md && pip install -e . && rm -r arena README.md \
    && rm -f /etc/pip.conf /usr/local/share/arena-build-ca.pem
COPY README.md ./
COPY arena ./arena
USER arena
CMD ["arena", "--help"]
