#!/usr/bin/python3
# http_echo.py: a plain HTTP server for nomade.http's tests, on 127.0.0.1.
#   /echo        answers {"method", "path", "headers", "body"} as JSON
#   /slow?ms=N   answers after N ms
#   /status?code=N&body=TEXT
#   /big?bytes=N N bytes of 'x'
#   /close       reads the request, counts it, closes the connection
#                without an answer (a server that dies mid-request)
#   /closed      how many requests /close has read, as JSON
# Prints "LISTENING <port>" once ready; --port 0 picks a free port.
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs


closed = {"n": 0}
closed_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, code, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Test-Header", "yes")
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        if url.path == "/echo":
            self.answer(200, json.dumps({"method": self.command, "path": self.path,
                                         "headers": dict(self.headers), "body": body}))
        elif url.path == "/slow":
            time.sleep(int(q.get("ms", "1000")) / 1000)
            self.answer(200, '{"slow":true}')
        elif url.path == "/status":
            self.answer(int(q.get("code", "200")), q.get("body", ""), "text/plain")
        elif url.path == "/close":
            with closed_lock:
                closed["n"] += 1
            self.close_connection = True
        elif url.path == "/closed":
            self.answer(200, json.dumps(closed))
        elif url.path == "/big":
            self.answer(200, b"x" * int(q.get("bytes", "0")), "text/plain")
        else:
            self.answer(404, "not found", "text/plain")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def main():
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("LISTENING", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
