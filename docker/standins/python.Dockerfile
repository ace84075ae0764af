# Stand-in for python:3.11-slim: Debian bookworm's Python 3.11 in a virtual environment first on PATH, so that
# `python` and `pip` are what the official image gives (Debian's own pip refuses system installs, PEP 668).
ARG BASE_IMAGE=arena-standin/debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -q && apt-get install -y -q --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /usr/local/python
ENV PATH=/usr/local/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8
CMD ["python3"]
