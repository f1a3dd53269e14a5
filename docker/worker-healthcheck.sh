#!/bin/bash
# The worker's /readyz, by bash's /dev/tcp on TCP, by netcat on a unix socket
# (HOST=unix:DIR/ names the socket DIR/<hostname>.sock, as app/server.py does;
# no `nc -N`: granian drops a request whose client half-closed).
# Not a Python interpreter: Docker runs this every 5 s, and bash costs a quarter
# of Python's CPU a check (loadtest/RESULTS.md).
request=$'GET /readyz HTTP/1.0\r\n\r\n'
if [[ $HOST == unix:* ]]; then
    path=${HOST#unix:}
    [[ $path == */ ]] && path=$path$HOSTNAME.sock
    read -r status < <(printf '%s' "$request" | nc -w 2 -U "$path")
else
    exec 3<>"/dev/tcp/127.0.0.1/${PORT:-8000}" && printf '%s' "$request" >&3 && read -r status <&3
fi
[[ $status == HTTP/1.?\ 200\ * ]]
