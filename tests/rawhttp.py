"""HTTP on raw sockets, for what a client library would not send or would
hide (malformed requests, keep-alive connections held open, bytes as they
come), and a stand-in server: one helper for each of those jobs."""

import contextlib
import http.server
import socket
import threading


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_until_closed(conn: socket.socket) -> bytes:
    """Everything the other side sends until it closes the connection."""
    return b"".join(iter(lambda: conn.recv(65536), b""))


def exchange(payload: bytes, port: int = 9000, host: str = "127.0.0.1") -> bytes:
    """Send `payload` on a new connection; what comes back before the server closes it."""
    with socket.create_connection((host, port), timeout=10) as conn:
        conn.sendall(payload)
        return read_until_closed(conn)


def read_response(conn: socket.socket) -> bytes:
    """One response on a kept-alive connection: its head and its Content-Length of body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(body) < length:
        chunk = conn.recv(4096)
        if not chunk:
            break
        body += chunk
        data += chunk
    return data


@contextlib.contextmanager
def stub_server(handler: type[http.server.BaseHTTPRequestHandler]):
    """A stand-in HTTP server with `handler`, on a free port of 127.0.0.1, for
    the length of the block: yields its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
