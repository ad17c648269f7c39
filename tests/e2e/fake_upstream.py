#!/usr/bin/env python3
"""A fake cloud LLM upstream (OpenAI, Anthropic and Gemini wire formats) for tests.

Usage:
  fake_upstream.py [--host 127.0.0.1] [--port 0] [--record FILE] [--key KEY]
                   [--fault MODE] [--delay-ms N] [--hang-s N] [--chunk-delay-ms N]
                   [--watch-stdin]

The first line on stdout is "PORT <n>" (the port actually bound; --port 0 picks a free one).
--watch-stdin makes the server exit when its stdin reaches end of file, so a test that spawns
it with a pipe on stdin never leaves it behind.

Endpoints (HTTP/1.1, keep-alive, streams use chunked transfer encoding):
  POST /v1/chat/completions                      OpenAI (Authorization: Bearer KEY)
  POST /v1/messages                              Anthropic (x-api-key: KEY, anthropic-version)
  POST /v1beta/models/<m>:generateContent        Gemini (x-goog-api-key: KEY or ?key=KEY)
  POST /v1beta/models/<m>:streamGenerateContent  Gemini stream (?alt=sse: SSE with CRLF line
                                                 ends, as Google sends; else one JSON array)
Every reply is deterministic: "You said: <text of the last user message>", streamed one word
per chunk. Token counts are whitespace-separated words: prompt = words of every message
(system included), completion = words of the reply. A max-tokens field (OpenAI max_tokens or
max_completion_tokens, Anthropic max_tokens, Gemini generationConfig.maxOutputTokens) smaller
than the reply cuts it to that many words with the vendor's "length" finish reason. Stop
sequences are ignored. OpenAI streams end with a usage chunk only when
stream_options.include_usage is true.
A wrong or missing key gives 401 in the vendor's error format (OpenAI's message echoes the key
it got, as OpenAI does partly masked, so that callers can test their redaction). The
Anthropic endpoint also answers 400 when anthropic-version is missing.

Fault modes, chosen per request, first match wins: the X-Fake-Fault header; a model id
"fault-<mode>" (e.g. "fault-http429"); the global mode (--fault, or POST /_fault):
  http500          500 in the vendor's error format
  http429          429 with Retry-After: 1
  http400          400 in the vendor's error format
  hang             read the request, then send nothing for --hang-s seconds (default 30)
  reset            read the request, then close the socket abruptly (RST), no response
  truncate         start the answer (a stream: headers and the first two text chunks), then
                   close cleanly without the terminal event (non-stream: half the body while
                   Content-Length promises more)
  slow_first_byte  wait --delay-ms (default 1000, header X-Fake-Delay-Ms) then answer normally
  bad_json         200 with a body that is not JSON
  none             no fault
X-Fake-Chunk-Delay-Ms (or --chunk-delay-ms) waits between stream chunks.

Control API (never recorded):
  POST /_fault {"mode": "http500", "count": 2}   global fault for the next `count` requests
                                                  (count omitted: until changed); "none" clears
  GET  /_fault                                   {"mode": ..., "count": ...}
  GET  /_health                                  {"ok": true}

--record FILE appends one JSON object per request (flushed at once):
  {"method", "path", "headers": {lower-case name: value}, "body": raw text,
   "client_port": the peer's TCP port (equal ports mean a reused connection), "time"}
"""
import argparse
import json
import os
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
FAULT = {"mode": "none", "count": None}
MODES = {"none", "http500", "http429", "http400", "hang", "reset", "truncate",
         "slow_first_byte", "bad_json"}


def words(text):
    return len(text.split())


def text_of(content):
    """Text of an OpenAI/Anthropic content (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-upstream/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    # ---- plumbing ----
    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def record(self, body):
        if not ARGS.record:
            return
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
            "client_port": self.client_address[1],
            "time": time.time(),
        }
        with LOCK:
            with open(ARGS.record, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    def send_json(self, status, doc, extra=None):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def start_stream(self, ctype="text/event-stream"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()
        if self.chunk_delay > 0:
            time.sleep(self.chunk_delay)

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def reset(self):
        """Closes the connection with a TCP RST and nothing sent."""
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        s = self.connection
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(s.detach())
        except OSError:
            pass

    def cut(self):
        """Closes the connection cleanly (FIN) in the middle of an answer: what was sent
        arrives, the rest never does."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def handle(self):
        try:
            super().handle()
        except (OSError, ValueError):
            pass

    # ---- fault selection ----
    def pick_fault(self, model):
        m = self.headers.get("X-Fake-Fault")
        if m:
            return m
        if model and model.startswith("fault-"):
            return model[len("fault-"):]
        with LOCK:
            mode = FAULT["mode"]
            if FAULT["count"] is not None:
                if FAULT["count"] <= 0:
                    return "none"
                FAULT["count"] -= 1
            return mode

    # ---- control ----
    def do_GET(self):
        if self.path == "/_health":
            return self.send_json(200, {"ok": True})
        if self.path == "/_fault":
            with LOCK:
                return self.send_json(200, dict(FAULT))
        return self.send_json(404, {"error": {"message": "not found", "type": "not_found"}})

    def do_POST(self):
        body = self.read_body()
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = urllib.parse.parse_qs(url.query)
        if path == "/_fault":
            try:
                doc = json.loads(body or b"{}")
                mode = doc.get("mode", "none")
                if mode not in MODES:
                    raise ValueError(mode)
                with LOCK:
                    FAULT["mode"] = mode
                    FAULT["count"] = doc.get("count")
                return self.send_json(200, {"ok": True})
            except (ValueError, AttributeError) as e:
                return self.send_json(400, {"error": {"message": "bad fault: %s" % e}})
        self.record(body)
        self.chunk_delay = float(self.headers.get("X-Fake-Chunk-Delay-Ms") or
                                 ARGS.chunk_delay_ms) / 1000.0
        if path == "/v1/chat/completions":
            vendor, model = "openai", None
        elif path == "/v1/messages":
            vendor, model = "anthropic", None
        else:
            m = re.fullmatch(r"/v1beta/models/([^/:]+):(generateContent|streamGenerateContent)",
                             path)
            if not m:
                return self.send_json(404, {"error": {"message": "no route for %s" % path,
                                                      "type": "not_found_error"}})
            vendor, model = "gemini", urllib.parse.unquote(m.group(1))
        try:
            req = json.loads(body or b"{}")
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError as e:
            return self.vendor_error(vendor, 400, "invalid JSON body: %s" % e)
        if model is None:
            model = req.get("model") if isinstance(req.get("model"), str) else ""
        fault = self.pick_fault(model)
        if fault == "reset":
            return self.reset()
        if fault == "hang":
            end = time.time() + ARGS.hang_s
            while time.time() < end:
                time.sleep(0.05)
            return self.reset()
        if fault == "slow_first_byte":
            time.sleep(float(self.headers.get("X-Fake-Delay-Ms") or ARGS.delay_ms) / 1000.0)
        if not self.auth_ok(vendor, query):
            return self.auth_error(vendor)
        if vendor == "anthropic" and not self.headers.get("anthropic-version"):
            return self.vendor_error(vendor, 400, "anthropic-version: header is required")
        if fault == "http500":
            return self.vendor_error(vendor, 500, "fake internal error")
        if fault == "http429":
            return self.vendor_error(vendor, 429, "Rate limit reached (fake)",
                                     {"Retry-After": "1"})
        if fault == "http400":
            return self.vendor_error(vendor, 400, "fake invalid request")
        if fault == "bad_json":
            data = b"this is not json"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.truncate = fault == "truncate"
        if vendor == "openai":
            return self.openai(req)
        if vendor == "anthropic":
            return self.anthropic(req)
        return self.gemini(req, model, path.endswith("streamGenerateContent"),
                           query.get("alt", [""])[0] == "sse")

    # ---- auth and errors ----
    def auth_ok(self, vendor, query):
        if vendor == "openai":
            return self.headers.get("Authorization") == "Bearer " + ARGS.key
        if vendor == "anthropic":
            return self.headers.get("x-api-key") == ARGS.key
        return (self.headers.get("x-goog-api-key") == ARGS.key or
                query.get("key", [""])[0] == ARGS.key)

    def auth_error(self, vendor):
        if vendor == "openai":
            auth = self.headers.get("Authorization") or ""
            got = auth[7:] if auth.startswith("Bearer ") else auth
            return self.send_json(401, {"error": {
                "message": "Incorrect API key provided: %s. You can find your API key at "
                           "https://platform.openai.com/account/api-keys." % got,
                "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})
        if vendor == "anthropic":
            return self.vendor_error(vendor, 401, "invalid x-api-key")
        return self.vendor_error(vendor, 401, "API key not valid. Please pass a valid API key.")

    def vendor_error(self, vendor, status, message, extra=None):
        if vendor == "openai":
            types = {400: "invalid_request_error", 429: "rate_limit_exceeded",
                     500: "server_error"}
            doc = {"error": {"message": message, "type": types.get(status, "error"),
                             "param": None, "code": None}}
        elif vendor == "anthropic":
            types = {400: "invalid_request_error", 401: "authentication_error",
                     429: "rate_limit_error", 500: "api_error"}
            doc = {"type": "error", "error": {"type": types.get(status, "api_error"),
                                              "message": message}}
        else:
            statuses = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED",
                        429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}
            doc = {"error": {"code": status, "message": message,
                             "status": statuses.get(status, "UNKNOWN")}}
        return self.send_json(status, doc, extra)

    # ---- the deterministic answer ----
    def reply(self, last_user, all_text, max_tokens):
        pieces = re.findall(r"\S+\s*", "You said: " + last_user)
        finish = "stop"
        if isinstance(max_tokens, int) and 0 <= max_tokens < len(pieces):
            pieces, finish = pieces[:max_tokens], "length"
        return pieces, finish, words(all_text)

    def truncated_json(self, doc):
        data = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data) + 100))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.cut()

    def openai(self, req):
        msgs = req.get("messages") if isinstance(req.get("messages"), list) else []
        users = [text_of(m.get("content")) for m in msgs if m.get("role") == "user"]
        all_text = " ".join(text_of(m.get("content")) for m in msgs)
        max_tokens = req.get("max_completion_tokens", req.get("max_tokens"))
        pieces, finish, prompt = self.reply(users[-1] if users else "", all_text, max_tokens)
        model = req.get("model", "")
        usage = {"prompt_tokens": prompt, "completion_tokens": len(pieces),
                 "total_tokens": prompt + len(pieces)}
        base = {"id": "chatcmpl-fake", "created": 1700000000, "model": model}
        if not req.get("stream"):
            doc = dict(base, object="chat.completion", choices=[{
                "index": 0, "message": {"role": "assistant", "content": "".join(pieces)},
                "logprobs": None, "finish_reason": finish}], usage=usage)
            return self.truncated_json(doc) if self.truncate else self.send_json(200, doc)
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))

        def ev(choices, **kw):
            d = dict(base, object="chat.completion.chunk", choices=choices, **kw)
            if include_usage and "usage" not in kw:
                d["usage"] = None
            self.chunk("data: " + json.dumps(d) + "\n\n")

        self.start_stream()
        ev([{"index": 0, "delta": {"role": "assistant", "content": ""},
             "finish_reason": None}])
        for i, p in enumerate(pieces):
            if self.truncate and i == 2:
                return self.cut()
            ev([{"index": 0, "delta": {"content": p}, "finish_reason": None}])
        ev([{"index": 0, "delta": {}, "finish_reason": finish}])
        if include_usage:
            ev([], usage=usage)
        self.chunk(": keep-alive comment\n\ndata: [DONE]\n\n")
        self.end_stream()

    def anthropic(self, req):
        msgs = req.get("messages") if isinstance(req.get("messages"), list) else []
        users = [text_of(m.get("content")) for m in msgs if m.get("role") == "user"]
        system = text_of(req.get("system", ""))
        all_text = " ".join([system] + [text_of(m.get("content")) for m in msgs])
        pieces, finish, prompt = self.reply(users[-1] if users else "", all_text,
                                            req.get("max_tokens"))
        stop = "end_turn" if finish == "stop" else "max_tokens"
        model = req.get("model", "")
        if not req.get("stream"):
            doc = {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                   "content": [{"type": "text", "text": "".join(pieces)}],
                   "stop_reason": stop, "stop_sequence": None,
                   "usage": {"input_tokens": prompt, "output_tokens": len(pieces)}}
            return self.truncated_json(doc) if self.truncate else self.send_json(200, doc)

        def ev(name, doc):
            self.chunk("event: %s\ndata: %s\n\n" % (name, json.dumps(doc)))

        self.start_stream()
        ev("message_start", {"type": "message_start", "message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": 1}}})
        ev("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}})
        ev("ping", {"type": "ping"})
        for i, p in enumerate(pieces):
            if self.truncate and i == 2:
                return self.cut()
            ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": p}})
        ev("content_block_stop", {"type": "content_block_stop", "index": 0})
        ev("message_delta", {"type": "message_delta",
                             "delta": {"stop_reason": stop, "stop_sequence": None},
                             "usage": {"output_tokens": len(pieces)}})
        ev("message_stop", {"type": "message_stop"})
        self.end_stream()

    def gemini(self, req, model, stream, sse):
        contents = req.get("contents") if isinstance(req.get("contents"), list) else []

        def parts_text(c):
            return "".join(p.get("text", "") for p in (c or {}).get("parts", [])
                           if isinstance(p, dict))

        users = [parts_text(c) for c in contents if c.get("role", "user") == "user"]
        system = parts_text(req.get("systemInstruction"))
        all_text = " ".join([system] + [parts_text(c) for c in contents])
        cfg = req.get("generationConfig") or {}
        pieces, finish, prompt = self.reply(users[-1] if users else "", all_text,
                                            cfg.get("maxOutputTokens"))
        reason = "STOP" if finish == "stop" else "MAX_TOKENS"

        def doc(text, fr, n):
            cand = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
            if fr:
                cand["finishReason"] = fr
            return {"candidates": [cand],
                    "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": n,
                                      "totalTokenCount": prompt + n},
                    "modelVersion": model}

        if not stream:
            d = doc("".join(pieces), reason, len(pieces))
            return self.truncated_json(d) if self.truncate else self.send_json(200, d)
        chunks = [doc(p, reason if i == len(pieces) - 1 else None, i + 1)
                  for i, p in enumerate(pieces)] or [doc("", reason, 0)]
        if not sse:  # without alt=sse Gemini streams one JSON array
            self.start_stream("application/json")
            for i, c in enumerate(chunks):
                if self.truncate and i == 2:
                    return self.cut()
                self.chunk(("[" if i == 0 else ",\r\n") + json.dumps(c))
            self.chunk("]")
            return self.end_stream()
        self.start_stream()
        for i, c in enumerate(chunks):
            if self.truncate and i == 2:
                return self.cut()
            self.chunk("data: " + json.dumps(c) + "\r\n\r\n")
        self.end_stream()


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--record", default=None)
    ap.add_argument("--key", default="test-key")
    ap.add_argument("--fault", default="none", choices=sorted(MODES))
    ap.add_argument("--delay-ms", type=float, default=1000)
    ap.add_argument("--hang-s", type=float, default=30)
    ap.add_argument("--chunk-delay-ms", type=float, default=0)
    ap.add_argument("--watch-stdin", action="store_true")
    ARGS = ap.parse_args()
    FAULT["mode"] = ARGS.fault
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer((ARGS.host, ARGS.port), Handler)
    print("PORT %d" % srv.server_address[1], flush=True)
    if ARGS.watch_stdin:
        def watch():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
