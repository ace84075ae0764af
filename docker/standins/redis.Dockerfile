# Stand-in for redis:7-alpine: Debian bookworm's Redis 7.0, data in /data (the volume docker-compose.yml mounts),
# `redis-cli` on PATH, and protected mode off as in the official image (other containers connect without a
# password on the compose network; nothing publishes its port).
ARG BASE_IMAGE=arena-standin/debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -q && apt-get install -y -q --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
EXPOSE 6379
CMD ["redis-server"]
