/*
 * ws.c: the opening handshake of ws.h. The server's answer is outside
 * input: read with lengths, never past what came, and refused with a
 * reason unless it is exactly the upgrade that was asked for.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <openssl/evp.h>
#include "ws.h"

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int ws_parse_url(const char *url, struct ws_url *u, char *why, size_t whylen)
{
	const char *p, *host, *end, *colon;
	size_t hlen;

	memset(u, 0, sizeof *u);
	if (!strncmp(url, "wss://", 6))
		u->tls = 1, p = url + 6;
	else if (!strncmp(url, "ws://", 5))
		p = url + 5;
	else
		return fail(why, whylen, "a WebSocket URL starts with ws:// or wss://");
	host = p;
	end = host + strcspn(host, "/?#");
	colon = (const char *)memchr(host, ':', (size_t)(end - host));
	hlen = (size_t)((colon ? colon : end) - host);
	if (hlen == 0 || hlen >= sizeof u->host)
		return fail(why, whylen, "no host, or a host too long");
	memcpy(u->host, host, hlen);
	if (strcspn(u->host, " \r\n@[]") != hlen)
		return fail(why, whylen, "a host with characters a host cannot have");
	if (colon) {
		size_t plen = (size_t)(end - colon - 1);
		if (plen == 0 || plen > 5 || strspn(colon + 1, "0123456789") < plen)
			return fail(why, whylen, "a port must be 1 to 5 digits");
		memcpy(u->port, colon + 1, plen);
	} else {
		strcpy(u->port, u->tls ? "443" : "80");
	}
	if (*end == '#')
		return fail(why, whylen, "a WebSocket URL has no fragment");
	if (strlen(end) + 2 > sizeof u->path || strpbrk(end, " \r\n#"))
		return fail(why, whylen, "a path too long, or with spaces or line breaks");
	snprintf(u->path, sizeof u->path, "%s%s", *end == '/' ? "" : "/", end);
	return 0;
}

void ws_accept_for(const char *key, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	char both[128];
	int n = snprintf(both, sizeof both, "%s%s", key, guid);

	out[0] = '\0';
	if (n > 0 && (size_t)n < sizeof both && EVP_Digest(both, (size_t)n, digest, &dlen, EVP_sha1(), NULL) && dlen == 20)
		EVP_EncodeBlock((unsigned char *)out, digest, 20);
}

int ws_request(const struct ws_url *u, const char *key, const char *extra, char *out, size_t cap)
{
	int n;
	int default_port = !strcmp(u->port, u->tls ? "443" : "80");

	n = snprintf(out, cap,
	             "GET %s HTTP/1.1\r\n"
	             "Host: %s%s%s\r\n"
	             "Upgrade: websocket\r\n"
	             "Connection: Upgrade\r\n"
	             "Sec-WebSocket-Key: %s\r\n"
	             "Sec-WebSocket-Version: 13\r\n"
	             "User-Agent: nomade\r\n"
	             "%s\r\n",
	             u->path, u->host, default_port ? "" : ":", default_port ? "" : u->port, key,
	             extra ? extra : "");
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* does the comma-separated header value v (length n) hold token t? */
static int has_token(const char *v, size_t n, const char *t)
{
	size_t tl = strlen(t), i = 0;

	while (i < n) {
		size_t start, end;
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		start = i;
		while (i < n && v[i] != ',')
			i++;
		end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end - start == tl && !strncasecmp(v + start, t, tl))
			return 1;
	}
	return 0;
}

int ws_check_answer(const char *buf, size_t len, const char *accept, char *why, size_t whylen)
{
	const char *end = NULL, *line, *stop;
	size_t i;
	int upgrade = 0, connection = 0, accepted = 0;

	for (i = 3; i < len; i++)
		if (buf[i - 3] == '\r' && buf[i - 2] == '\n' && buf[i - 1] == '\r' && buf[i] == '\n') {
			end = buf + i + 1;
			break;
		}
	if (end == NULL)
		return len >= WS_MAX_HANDSHAKE ? fail(why, whylen, "an answer head over %d bytes", WS_MAX_HANDSHAKE) : 0;
	if ((size_t)(end - buf) < 12 || memcmp(buf, "HTTP/1.1 ", 9) != 0)
		return fail(why, whylen, "not an HTTP/1.1 answer");
	if (memcmp(buf + 9, "101", 3) != 0 || (buf[12] != ' ' && buf[12] != '\r'))
		return fail(why, whylen, "HTTP status %.3s, not 101 Switching Protocols", buf + 9);
	line = (const char *)memchr(buf, '\n', (size_t)(end - buf)) + 1;
	stop = end - 2;  /* the empty line */
	while (line < stop) {
		const char *eol = (const char *)memchr(line, '\n', (size_t)(stop - line));
		const char *colon, *v;
		size_t nlen, vlen;
		if (eol == NULL || eol == line || eol[-1] != '\r')
			return fail(why, whylen, "a header line not ended by CRLF");
		colon = (const char *)memchr(line, ':', (size_t)(eol - line));
		if (colon == NULL || colon == line)
			return fail(why, whylen, "a header line without a name");
		nlen = (size_t)(colon - line);
		v = colon + 1;
		while (v < eol - 1 && (*v == ' ' || *v == '\t'))
			v++;
		vlen = (size_t)(eol - 1 - v);
		while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		if (nlen == 7 && !strncasecmp(line, "upgrade", 7))
			upgrade = has_token(v, vlen, "websocket");
		else if (nlen == 10 && !strncasecmp(line, "connection", 10))
			connection = has_token(v, vlen, "upgrade");
		else if (nlen == 20 && !strncasecmp(line, "sec-websocket-accept", 20))
			accepted = vlen == strlen(accept) && !memcmp(v, accept, vlen);
		line = eol + 1;
	}
	if (!upgrade || !connection)
		return fail(why, whylen, "no 'Upgrade: websocket' and 'Connection: upgrade' in the answer");
	if (!accepted)
		return fail(why, whylen, "a Sec-WebSocket-Accept that does not answer our key");
	return (int)(end - buf);
}
