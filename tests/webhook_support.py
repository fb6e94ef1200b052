"""A loopback webhook receiver for the job tests: it records every call, and fails on demand."""

import http.server
import threading


class Receiver:
    """A loopback webhook receiver that answers 500 to the first `failures` calls."""

    def __init__(self, failures: int, port: int = 0):
        self.failures = failures
        self.calls: list[tuple[int, dict, bytes]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = 500 if len(receiver.calls) < receiver.failures else 204
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.calls.append((status, headers, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
