#!/bin/sh
# Run a command in an image build with pip trusting the build secret
# `build-ca` when one was lent (RUN --mount=type=secret,id=build-ca): a host's
# CA bundle, for machines whose TLS to PyPI is inspected by a proxy. Without
# it pip keeps its own CA list. A secret is mounted for the one RUN and is
# never written into a layer.
#   RUN --mount=type=secret,id=build-ca /usr/local/bin/with-build-ca pip install ...
set -eu
if grep -qs 'BEGIN CERTIFICATE' /run/secrets/build-ca; then
    export PIP_CERT=/run/secrets/build-ca
fi
exec "$@"
