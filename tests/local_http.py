"""A real HTTP server on a free loopback port, in a thread, for tests of what we send to
other systems (webhook receivers, WHMCS)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def http_server_start(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def http_server_stop(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()
