#!/usr/bin/env python3
"""Records what toolflow and a real OpenAI-compatible server say to each other.

    record-proxy.py LISTEN_PORT UPSTREAM_BASE OUT.jsonl

Forwards every POST to UPSTREAM_BASE (e.g. http://127.0.0.1:8401) and appends one JSON
line per exchange: the request body, the answer's status and body, byte for byte as text.
The fixtures under crates/toolflow-llm/tests/fixtures/servers/ were recorded with it.
"""
import http.server
import json
import sys
import urllib.error
import urllib.request

port, upstream, out = int(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3]


class Proxy(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        request = urllib.request.Request(
            upstream + self.path, data=body, headers={"content-type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=600) as answer:
                status, data = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, data = error.code, error.read()
        with open(out, "a", encoding="utf-8") as log:
            log.write(json.dumps({"path": self.path, "request": body.decode(), "status": status,
                                  "response": data.decode()}) + "\n")
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), Proxy).serve_forever()
