# One image for every Arena process: the API, the workers and the one-shot migration.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# torch first, in a layer of its own, from the CPU index: PyPI's default build bundles CUDA (several GB),
# and no Arena run uses a GPU. The pin matches pyproject.toml, so the install below keeps this build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# The dependencies from pyproject.toml, against a placeholder package, so that changing the code does not
# reinstall them. The install is editable so the code copied below is the code that runs.
COPY pyproject.toml README.md ./
RUN mkdir arena && touch arena/__init__.py && pip install -e . && rm -r arena

COPY arena ./arena

# Nothing here needs root. ARENA_DATA_DIR is only used without DATABASE_URL/BROKER_URL (embedded mode).
RUN useradd --create-home --uid 10001 arena && mkdir -p /app/var && chown arena /app/var
USER arena
ENV ARENA_DATA_DIR=/app/var

EXPOSE 8000
CMD ["arena", "--help"]
