/* HTTP/1.1 server over libmicrohttpd: bounded request bodies, one handler call per request,
 * server-sent-event streams fed from any thread without ever blocking the producer. */
#ifndef TANDEM_SERVER_HTTP_H
#define TANDEM_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>

enum http_error {
    HTTP_OK = 0,
    HTTP_E_ARG = -1,      /* bad parameter, or a second answer to the same request */
    HTTP_E_NOMEM = -2,
    HTTP_E_CLOSED = -3,   /* the client went away (or stopped reading: buffer cap reached) */
    HTTP_E_LISTEN = -4,   /* cannot bind/listen */
};
const char *http_strerror(int err);

struct http_config {
    const char *host;           /* listen address, e.g. "127.0.0.1" or "0.0.0.0" */
    int port;                   /* 0: an ephemeral port (see http_server_port) */
    size_t max_body_bytes;      /* larger bodies are answered 413 by the server itself */
    unsigned max_connections;   /* beyond: new connections are refused */
    unsigned idle_timeout_s;    /* idle keep-alive connections are closed after this */
    unsigned sse_keepalive_s;   /* an idle stream gets an SSE comment ": keep-alive" this often */
    size_t stream_buffer_cap;   /* bytes a stream may hold unsent before it counts as closed */
};
void http_config_default(struct http_config *cfg);  /* 127.0.0.1:8080, 4 MiB, 256, 60 s, 15 s, 4 MiB */

struct http_server;
struct http_req;     /* one request; valid from the handler call until it is answered */
struct http_stream;  /* an open SSE/chunked response, refcounted between producer and server */

/* Called once per request on the connection's own thread, after the whole body arrived. The
 * handler must answer exactly once, before it returns: http_respond, or http_stream_open
 * (after which the stream lives on and is fed from any thread). It may block. */
typedef void (*http_handler_fn)(struct http_req *r, void *ud);

int http_server_start(struct http_server **out, const struct http_config *cfg,
                      http_handler_fn fn, void *ud, char *err, size_t errlen);
int http_server_port(const struct http_server *s);  /* the bound port */
/* True once http_server_stop has begun (handlers should finish quickly, streams end). */
bool http_server_stopping(const struct http_server *s);
/* Graceful stop: no new connections; waits up to grace_s seconds for handlers and open
 * streams to finish (streams not closed by then are cut), then frees everything. Accepts
 * NULL. */
void http_server_stop(struct http_server *s, int grace_s);

const char *http_req_method(const struct http_req *r);
const char *http_req_path(const struct http_req *r);      /* without the query string */
const char *http_req_query(const struct http_req *r, const char *key);  /* NULL if absent */
const char *http_req_header(const struct http_req *r, const char *name); /* case-insensitive */
const char *http_req_body(const struct http_req *r, size_t *len);        /* NUL-terminated */
/* The request id: the client's X-Request-Id when it is sane (<= 128 printable chars), else a
 * fresh random one. Every response carries it in X-Request-Id. */
const char *http_req_id(const struct http_req *r);
/* Adds a response header (both strings copied) for this request's answer; CR/LF refused. */
int http_req_add_header(struct http_req *r, const char *name, const char *value);

/* The whole answer at once; body is copied. */
int http_respond(struct http_req *r, int status, const char *content_type, const char *body,
                 size_t len);

/* Starts a streamed answer (status, content type; no Content-Length, chunked). Returns a
 * stream owned by the caller until http_stream_close; the request must not be used after. */
int http_stream_open(struct http_req *r, int status, const char *content_type,
                     struct http_stream **out);
/* Queues bytes (copied) to send; never blocks. HTTP_E_CLOSED when the client is gone or has
 * stopped reading (more than stream_buffer_cap unsent). */
int http_stream_write(struct http_stream *s, const char *data, size_t len);
/* Non-blocking: has the client closed its side (or the server begun stopping)? */
bool http_stream_client_gone(const struct http_stream *s);
/* Ends the response after the queued bytes are sent, and releases the caller's reference. */
void http_stream_close(struct http_stream *s);

#endif
