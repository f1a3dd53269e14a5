# nginx in front of the workers, with the same nginx/nginx.conf as the local mode.
# Build context: the project root.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
# curl: the entrypoint's probes of the workers and of nginx's status port
RUN apt-get update \
 && apt-get upgrade -y --no-install-recommends \
 && apt-get install -y --no-install-recommends nginx-light curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10002 --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin proxy-user
COPY nginx/nginx.conf nginx/render-upstream.sh /etc/reviewrating/
COPY docker/nginx-entrypoint.sh /usr/local/bin/nginx-entrypoint
USER proxy-user
EXPOSE 9000
# nginx's own health on its status port, not a worker's through it (a worker
# down must not make Docker restart nginx), by bash's /dev/tcp, as in the worker
# image (curl: 22 ms of the container's CPU a check, bash 17 ms).
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/${NGINX_STATUS_ADDR:-127.0.0.1}/9001 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r status <&3 && [[ $status == HTTP/1.?\\ 200\\ * ]]"]
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/usr/local/bin/nginx-entrypoint"]
