# The load test's Rust peer: messense/fasttext-serving 0.7.0 (actix-web, one
# thread a container), the single binary a user might pick instead of us, with
# the same model. Built on the host by docker/build-rust-peer.sh (cargo inside
# build containers fails TLS here). It answers POST /predict with a JSON list of
# raw texts (no normalisation). Build context: the project root.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN useradd --uid 10004 --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin peer
COPY docker/rustbin/fasttext-serving /usr/local/bin/fasttext-serving
COPY models/amazon_review_full.ftz /srv/models/
USER peer
EXPOSE 8000
# It has no health route: a POST of one text must answer 200.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'POST /predict HTTP/1.0\\r\\nContent-Type: application/json\\r\\nContent-Length: 5\\r\\n\\r\\n[\"a\"]' >&3 && read -r status <&3 && [[ $status == HTTP/1.?\\ 200\\ * ]]"]
CMD ["fasttext-serving", "--model", "/srv/models/amazon_review_full.ftz", "--address", "0.0.0.0", "--port", "8000", "--workers", "1"]
