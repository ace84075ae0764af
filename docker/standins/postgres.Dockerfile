# Stand-in for postgres:16-alpine: Debian bookworm's PostgreSQL 15 (Arena's schema needs nothing newer), with an
# entrypoint that honours POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB (initdb on the first start, into
# PGDATA, the volume docker-compose.yml mounts) and `pg_isready` on PATH for the compose healthcheck.
ARG BASE_IMAGE=arena-standin/debian:bookworm
FROM ${BASE_IMAGE}
# The package's own "main" cluster is removed: the entrypoint makes the one the container uses.
RUN apt-get update -q && apt-get install -y -q --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* /var/lib/postgresql/15 /etc/postgresql/15 \
    && mkdir -p /var/lib/postgresql/data /run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data \
    LANG=C.UTF-8
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
