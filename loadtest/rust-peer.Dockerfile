# The load test's Rust peer: messense/fasttext-serving 0.7.0 (actix-web, THREADS
# threads), the single binary a user might pick instead of us, with
# the same model. Built on the host by loadtest/build-rust-peer.sh (cargo inside
# build containers fails TLS here). It answers POST /predict with a JSON list of
# raw texts (no normalisation). Build context: the project root.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN useradd --uid 10004 --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin peer
COPY loadtest/bin/fasttext-serving /usr/local/bin/fasttext-serving
COPY models/amazon_review_full.ftz /srv/models/
USER peer
# Where it listens, and its threads (one a core).
ENV ADDRESS=0.0.0.0 PORT=8000 THREADS=1
EXPOSE 8000
# It has no health route: a POST of one text must answer 200.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/$ADDRESS/$PORT && printf 'POST /predict HTTP/1.0\\r\\nContent-Type: application/json\\r\\nContent-Length: 5\\r\\n\\r\\n[\"a\"]' >&3 && read -r status <&3 && [[ $status == HTTP/1.?\\ 200\\ * ]]"]
CMD ["sh", "-c", "exec fasttext-serving --model /srv/models/amazon_review_full.ftz --address \"$ADDRESS\" --port \"$PORT\" --workers \"$THREADS\""]
