/*
 * test_ws.c: the WebSocket opening handshake (runtime/ws.c): RFC 6455's
 * own example key and accept, URLs, the request, and the answers a client
 * must refuse.
 */
#include <string.h>
#include "unit.h"
#include "ws.h"

static const char *const OK_ANSWER =
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

static int check(const char *answer, char *why)
{
	return ws_check_answer(answer, strlen(answer), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", why, 160);
}

int main(void)
{
	char accept[29], why[160], req[2048];
	struct ws_url u;
	int n;

	ws_accept_for("dGhlIHNhbXBsZSBub25jZQ==", accept);
	unit_ok(!strcmp(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "the accept of RFC 6455's example key");

	unit_ok(ws_parse_url("wss://stream.bybit.com/v5/public/spot", &u, why, sizeof why) == 0 && u.tls
	        && !strcmp(u.host, "stream.bybit.com") && !strcmp(u.port, "443") && !strcmp(u.path, "/v5/public/spot"),
	        "wss://host/path: TLS, port 443, the path");
	unit_ok(ws_parse_url("ws://127.0.0.1:8080?x=1", &u, why, sizeof why) == 0 && !u.tls && !strcmp(u.port, "8080")
	        && !strcmp(u.path, "/?x=1"), "ws://host:port?query: the path is / and the query");
	unit_ok(ws_parse_url("http://x/", &u, why, sizeof why) == -1 && strstr(why, "ws://"), "http:// is refused");
	unit_ok(ws_parse_url("ws://:80/", &u, why, sizeof why) == -1, "no host is refused");
	unit_ok(ws_parse_url("ws://h:123456/", &u, why, sizeof why) == -1, "a port of 6 digits is refused");
	unit_ok(ws_parse_url("ws://h/a b", &u, why, sizeof why) == -1, "a space in the path is refused");
	unit_ok(ws_parse_url("ws://h/#frag", &u, why, sizeof why) == -1, "a fragment is refused");

	ws_parse_url("ws://127.0.0.1:8080/echo", &u, why, sizeof why);
	n = ws_request(&u, "dGhlIHNhbXBsZSBub25jZQ==", "X-A: b\r\n", req, sizeof req);
	unit_ok(n > 0 && !strncmp(req, "GET /echo HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n", 42)
	        && strstr(req, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
	        && strstr(req, "Sec-WebSocket-Version: 13\r\n") && strstr(req, "X-A: b\r\n\r\n") == req + n - 10,
	        "the request: GET, Host with the port, key, version 13, the extra headers, a blank line");
	unit_ok(ws_request(&u, "k", NULL, req, 40) == -1, "a request that does not fit is -1");

	unit_ok(check(OK_ANSWER, why) == (int)strlen(OK_ANSWER), "a right answer: its head's length");
	unit_ok(check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n", why) == 0,
	        "an answer not yet whole: 0, read on");
	unit_ok(check("HTTP/1.1 403 Forbidden\r\n\r\n", why) == -1 && strstr(why, "403"), "a 403 is refused, named");
	unit_ok(check("HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\n"
	              "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", why) > 0,
	        "header names and tokens in any case, Connection a token list");
	unit_ok(check("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	              "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n", why) == -1 && strstr(why, "Accept"),
	        "a wrong accept is refused");
	unit_ok(check("HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n"
	              "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", why) == -1,
	        "no Upgrade header is refused");
	unit_ok(check("HTTP/1.0 101 OK\r\n\r\n", why) == -1, "HTTP/1.0 is refused");
	unit_ok(check("HTTP/1.1 101 OK\r\nUpgrade websocket\r\n\r\n", why) == -1, "a header line without ':'");
	return unit_done();
}
