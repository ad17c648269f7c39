#!/usr/bin/env python3
"""Loopback HTTP file server for tests/e2e/pull.sh: GET/HEAD, Range requests, fault injection.

Prints its port on the first line of stdout, then serves files from --dir on 127.0.0.1:
  /files/NAME                        the file (Range: bytes=A- or A-B gives 206 + Content-Range)
  /OWNER/REPO/resolve/REV/PATH       Hugging Face layout: the file PATH
  /cdn/REPO/resolve/REV/PATH         302 to http://localhost:PORT/files/NAME (another host
                                     name, as the Hub redirects to its CDN)
  /abort/N/NAME                      a request without Range sends the full Content-Length but
                                     only N bytes, then drops the connection (an interrupted
                                     transfer); Range requests are answered normally
  /slow/NAME                         8 KiB chunks with a pause between them
  /norange/NAME                      ignores Range (always 200 with the whole file)
  /badrange/NAME                     answers Range with 206 for a different start offset
  /redirect/REST                     302 to /REST
Files carry an ETag; a Range request whose If-Range differs gets the whole file (200).
Anything else is 404. Each request is logged to --log as one line:
  METHOD PATH range=<Range or -> if-range=<If-Range or -> auth=<Authorization or -> status=<code>
"""
import argparse
import http.server
import os
import re
import sys
import threading
import time

CHUNK = 8192


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server_version = "range_server/1"

    def log_message(self, fmt, *args):  # quiet: the request log is written by log_request_line
        pass

    def log_request_line(self, status):
        line = "%s %s range=%s if-range=%s auth=%s status=%d\n" % (
            self.command, self.path, self.headers.get("Range", "-"),
            self.headers.get("If-Range", "-"), self.headers.get("Authorization", "-"), status)
        with self.server.log_lock:
            with open(self.server.log_path, "a") as f:
                f.write(line)

    def do_HEAD(self):
        self.handle_any(send_body=False)

    def do_GET(self):
        self.handle_any(send_body=True)

    def fail(self, status, text):
        body = ("<html><body>%d %s</body></html>\n" % (status, text)).encode()
        self.log_request_line(status)
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    def resolve(self):
        """(mode, arg, file path) for the request path, or None."""
        path = self.path.split("?", 1)[0]
        m = re.fullmatch(r"/redirect(/.*)", path)
        if m:
            return ("redirect", m.group(1), None)
        m = re.fullmatch(r"/abort/(\d+)/([^/]+)", path)
        if m:
            return ("abort", int(m.group(1)), m.group(2))
        m = re.fullmatch(r"/(files|slow|norange|badrange)/([^/]+)", path)
        if m:
            return (m.group(1), None, m.group(2))
        m = re.fullmatch(r"/cdn/[^/]+/resolve/[^/]+/(.+)", path)
        if m and ".." not in m.group(1).split("/"):
            return ("redirect", "http://localhost:%d/files/%s" % (
                self.server.server_address[1], m.group(1).split("/")[-1]), None)
        m = re.fullmatch(r"/[^/]+/[^/]+/resolve/[^/]+/(.+)", path)
        if m and ".." not in m.group(1).split("/"):
            return ("files", None, m.group(1))
        return None

    def handle_any(self, send_body):
        r = self.resolve()
        if r is None:
            return self.fail(404, "Not Found")
        mode, arg, rel = r
        if mode == "redirect":
            self.log_request_line(302)
            self.send_response(302)
            self.send_header("Location", arg)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        full = os.path.join(self.server.root, rel)
        if not os.path.isfile(full):
            return self.fail(404, "Not Found")
        with open(full, "rb") as f:
            data = f.read()
        size = len(data)
        st = os.stat(full)
        etag = '"%x-%x"' % (size, st.st_mtime_ns)
        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if rng and mode != "norange" and (if_range is None or if_range == etag):
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if not m:
                return self.fail(400, "Bad Range")
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else size - 1
            if start >= size or end < start:
                self.log_request_line(416)
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % size)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            end = min(end, size - 1)
            if mode == "badrange":
                start = max(0, start - 100)
            status = 206
        self.log_request_line(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "none" if mode == "norange" else "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("ETag", etag)
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.end_headers()
        if not send_body:
            return
        body = data[start:end + 1]
        try:
            if mode == "abort" and rng is None:
                self.wfile.write(body[:arg])
                self.wfile.flush()
                self.close_connection = True
                return
            for i in range(0, len(body), CHUNK):
                self.wfile.write(body[i:i + CHUNK])
                if mode == "slow":
                    self.wfile.flush()
                    time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.root = os.path.abspath(args.dir)
    srv.log_path = args.log
    srv.log_lock = threading.Lock()
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
