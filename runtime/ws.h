/*
 * ws.h: the WebSocket opening handshake (RFC 6455 §4), plain C with no
 * I/O, so it is fuzzed on its own: the URL, the request a client sends,
 * and the check of the server's answer. Framing is wslay's (Debian's
 * libwslay); the sockets and TLS are lib_ws.c's.
 */
#ifndef NOMADE_WS_H
#define NOMADE_WS_H

#include <stddef.h>

#define WS_MAX_HANDSHAKE 8192

struct ws_url {
	int tls;            /* wss */
	char host[256];
	char port[8];
	char path[1024];    /* with the query */
};

/* 0, or -1 with why: ws://host[:port][/path] or wss://... */
int ws_parse_url(const char *url, struct ws_url *u, char *why, size_t whylen);

/* the Sec-WebSocket-Accept a server must answer to key (base64, 28 chars) */
void ws_accept_for(const char *key, char out[29]);

/* the request, into out (cap bytes); its length, or -1 when it does not fit.
   extra: further header lines, each ending in \r\n, or NULL */
int ws_request(const struct ws_url *u, const char *key, const char *extra, char *out, size_t cap);

/*
 * The server's answer so far (buf, len): 0 while its head is incomplete,
 * the head's length once it is complete and right (101, Upgrade:
 * websocket, Connection: upgrade, the right Accept), or -1 with why.
 */
int ws_check_answer(const char *buf, size_t len, const char *accept, char *why, size_t whylen);

#endif
