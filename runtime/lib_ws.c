/*
 * lib_ws.c: nomade.ws, a WebSocket client on the libev loop: TCP, TLS
 * (OpenSSL, the peer always verified: NOMADE_CA_FILE names a CA bundle),
 * the opening handshake (ws.c) and RFC 6455 framing by wslay (masking,
 * fragments, ping/pong, close, a size limit).
 *
 *   ws.connect(url, {on_message = fn(conn, data, "text"|"binary"),
 *                    on_close = fn(conn, code, reason), headers = "X: y\r\n",
 *                    max_message = bytes (default 4 MB), timeout = s (10)})
 *     -> conn, or nil, err. In a handler it yields until the connection is
 *     open or failed (nil, "cancelled" if the sched cancels the wait: the
 *     connection is closed then); the blocking form, on a command's main
 *     thread outside loop.run, runs the loop until then; anywhere else it
 *     raises "ws.connect: cannot wait here".
 *   conn:send(text) -> true or nil, err;  conn:ping([data]);
 *   conn:close([code, reason [, now]])   the close handshake, or with now
 *                                        at once (on_close gets 1006)
 *   conn.open -> boolean
 * Messages are gathered while wslay reads, then handed to on_message, each
 * in a coroutine of its own (sched_spawn), once the read is over: a handler
 * may send or close without pulling the connection from under wslay.
 * on_close is called once, whatever ended the connection, with the peer's
 * close code, else the one sent (1009 for a message over max_message), else
 * 0 and the error.
 */
#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <ev.h>
#include <lauxlib.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <wslay/wslay.h>
#include "host.h"
#include "lib_sched.h"
#include "ws.h"

#define CONN_MT "nomade.ws.conn"

enum { CONNECTING, TLS, HANDSHAKE, OPEN, CLOSED };

/* a message read, waiting to be handed to Lua */
typedef struct msg {
	struct msg *next;
	int binary;
	size_t len;
	char data[];
} msg;

typedef struct {
	int state, fd, wants_write, closed_code;
	SSL *ssl;
	wslay_event_context_ptr ctx;
	ev_io io;
	ev_timer timer;
	struct ws_url url;
	char accept[29];
	char out[WS_MAX_HANDSHAKE + 2048];  /* the request, then the head read */
	size_t out_len, out_off, in_len;
	char *early;                       /* bytes after the head, for wslay */
	size_t early_len, early_off;
	msg *head, *tail;
	char error[512], close_reason[128];
	int self_ref, cb_ref;              /* the userdata, its callbacks */
	struct sched_wait wait;            /* a coroutine's, in connect */
	int waiting;
} conn;

static SSL_CTX *tls_ctx;
static lua_State *main_L;

static struct ev_loop *loop(void) { return EV_DEFAULT; }

/* ---- the end of a connection */

static void release_io(conn *c)
{
	ev_io_stop(loop(), &c->io);
	ev_timer_stop(loop(), &c->timer);
	if (c->ctx) {
		wslay_event_context_free(c->ctx);
		c->ctx = NULL;
	}
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	free(c->early);
	c->early = NULL;
}

static void free_msgs(conn *c)
{
	while (c->head) {
		msg *m = c->head;
		c->head = m->next;
		free(m);
	}
	c->tail = NULL;
}

static void deliver(conn *c);
static void finish(conn *c, const char *why);

/* resumes a coroutine waiting in connect: conn or nil, err */
static void wake(conn *c)
{
	lua_State *co = c->wait.co;
	int n;

	if (!c->waiting)
		return;
	c->waiting = 0;
	if (c->state == OPEN) {
		lua_rawgeti(co, LUA_REGISTRYINDEX, c->self_ref);
		n = 1;
	} else {
		lua_pushnil(co);
		lua_pushstring(co, c->error);
		n = 2;
	}
	sched_wake(&c->wait, n);
}

/* the sched cancels the wait: the connection ends without waking it */
static void cancel(struct sched_wait *w)
{
	conn *c = (conn *)((char *)w - offsetof(conn, wait));

	c->waiting = 0;
	finish(c, "cancelled");
}

/* the connection is over (why: for people); on_close once, then unanchored */
static void finish(conn *c, const char *why)
{
	lua_State *L = main_L;
	int was_open = c->state == OPEN;

	if (c->state == CLOSED)
		return;
	if (why && c->error[0] == '\0')
		snprintf(c->error, sizeof c->error, "%s", why);
	deliver(c);  /* what was read before the end */
	c->state = CLOSED;
	release_io(c);
	if (c->waiting) {
		wake(c);
	} else if (was_open) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, c->cb_ref);
		if (lua_getfield(L, -1, "on_close") == LUA_TFUNCTION) {
			lua_rawgeti(L, LUA_REGISTRYINDEX, c->self_ref);
			lua_pushinteger(L, c->closed_code);
			lua_pushstring(L, c->close_reason[0] ? c->close_reason : c->error);
			lua_remove(L, -5);  /* the callbacks table */
			sched_spawn(L, 3, "ws on_close");
		} else {
			lua_pop(L, 2);
		}
	}
	luaL_unref(L, LUA_REGISTRYINDEX, c->self_ref);
	c->self_ref = LUA_NOREF;
}

/* ---- raw I/O over the socket or TLS: n, 0 (would block) or -1 (over) */

/* what SSL_read or SSL_write returned (r), as raw_read and raw_write answer */
static ssize_t tls_result(conn *c, int r, const char *what)
{
	unsigned long e;
	const char *why;

	if (r > 0)
		return r;
	r = SSL_get_error(c->ssl, r);
	if (r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE)
		return 0;
	e = ERR_get_error();
	why = e ? ERR_reason_error_string(e) : NULL;
	snprintf(c->error, sizeof c->error, "TLS %s: %s", what, r == SSL_ERROR_ZERO_RETURN ? "closed by the peer"
	         : why ? why : "connection lost");
	ERR_clear_error();
	return -1;
}

/* what recv or send returned (n), the same way */
static ssize_t sock_result(conn *c, ssize_t n)
{
	if (n > 0)
		return n;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	snprintf(c->error, sizeof c->error, "%s", n == 0 ? "closed by the peer" : strerror(errno));
	return -1;
}

static ssize_t raw_read(conn *c, void *buf, size_t len)
{
	if (c->ssl)
		return tls_result(c, SSL_read(c->ssl, buf, (int)(len > 1 << 30 ? 1 << 30 : len)), "read");
	return sock_result(c, recv(c->fd, buf, len, 0));
}

static ssize_t raw_write(conn *c, const void *buf, size_t len)
{
	if (c->ssl)
		return tls_result(c, SSL_write(c->ssl, buf, (int)(len > 1 << 30 ? 1 << 30 : len)), "write");
	if (len == 0)
		return 0;
	return sock_result(c, send(c->fd, buf, len, MSG_NOSIGNAL));
}

/* ---- wslay's callbacks */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	conn *c = (conn *)user;
	ssize_t n;

	(void)flags;
	if (c->early) {  /* what came with the handshake's answer first */
		n = (ssize_t)(c->early_len - c->early_off < len ? c->early_len - c->early_off : len);
		memcpy(buf, c->early + c->early_off, (size_t)n);
		c->early_off += (size_t)n;
		if (c->early_off == c->early_len) {
			free(c->early);
			c->early = NULL;
		}
		return n;
	}
	n = raw_read(c, buf, len);
	if (n == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (n < 0)
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
	ssize_t n = raw_write((conn *)user, data, len);

	(void)flags;
	if (n == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (n < 0)
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return n;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
	(void)ctx, (void)user;
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	conn *c = (conn *)user;
	msg *m;

	(void)ctx;
	if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
		c->closed_code = arg->status_code;
		if (arg->msg_length > 2)
			snprintf(c->close_reason, sizeof c->close_reason, "%.*s", (int)(arg->msg_length - 2), arg->msg + 2);
		return;
	}
	if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
		return;  /* ping and pong: wslay answers pings itself */
	if ((m = (msg *)malloc(sizeof *m + arg->msg_length)) == NULL)
		return;
	m->next = NULL;
	m->binary = arg->opcode == WSLAY_BINARY_FRAME;
	m->len = arg->msg_length;
	memcpy(m->data, arg->msg, arg->msg_length);
	if (c->tail)
		c->tail->next = m;
	else
		c->head = m;
	c->tail = m;
}

static const struct wslay_event_callbacks callbacks = {recv_cb, send_cb, genmask_cb, NULL, NULL, NULL, msg_cb};

/* the messages read, each to on_message in a coroutine of its own */
static void deliver(conn *c)
{
	lua_State *L = main_L;

	while (c->head) {
		msg *m = c->head;
		c->head = m->next;
		if (c->head == NULL)
			c->tail = NULL;
		lua_rawgeti(L, LUA_REGISTRYINDEX, c->cb_ref);
		if (lua_getfield(L, -1, "on_message") == LUA_TFUNCTION) {
			lua_rawgeti(L, LUA_REGISTRYINDEX, c->self_ref);
			lua_pushlstring(L, m->data, m->len);
			lua_pushstring(L, m->binary ? "binary" : "text");
			lua_remove(L, -5);
			free(m);
			sched_spawn(L, 3, "ws on_message");
		} else {
			lua_pop(L, 2);
			free(m);
		}
	}
}

/* ---- the watchers */

static void want(conn *c, int events)
{
	ev_io_stop(loop(), &c->io);
	ev_io_set(&c->io, c->fd, events);
	ev_io_start(loop(), &c->io);
}

static void open_events(conn *c)
{
	int ev = (wslay_event_want_read(c->ctx) ? EV_READ : 0) | (wslay_event_want_write(c->ctx) ? EV_WRITE : 0);

	if (ev == 0) {  /* both sides closed: the close handshake is done */
		if (c->closed_code == 0)  /* the peer sent none: ours (1009: too big) */
			c->closed_code = wslay_event_get_status_code_sent(c->ctx);
		finish(c, "closed");
		return;
	}
	want(c, ev);
}

static void start_handshake(conn *c)
{
	unsigned char raw[16];
	char key[25];
	int n;

	RAND_bytes(raw, sizeof raw);
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
	ws_accept_for(key, c->accept);
	lua_rawgeti(main_L, LUA_REGISTRYINDEX, c->cb_ref);
	lua_getfield(main_L, -1, "headers");
	n = ws_request(&c->url, key, lua_tostring(main_L, -1), c->out, sizeof c->out);
	lua_pop(main_L, 2);
	if (n < 0) {
		finish(c, "the handshake request does not fit");
		return;
	}
	c->out_len = (size_t)n, c->out_off = 0, c->in_len = 0;
	c->state = HANDSHAKE;
	want(c, EV_WRITE);
}

static void become_open(conn *c, size_t head)
{
	struct wslay_event_callbacks cbs = callbacks;

	if (c->in_len > head) {  /* frames that came with the answer */
		c->early_len = c->in_len - head;
		if ((c->early = (char *)malloc(c->early_len)) == NULL) {
			finish(c, "out of memory");
			return;
		}
		memcpy(c->early, c->out + head, c->early_len);
		c->early_off = 0;
	}
	if (wslay_event_context_client_init(&c->ctx, &cbs, c) != 0) {
		finish(c, "wslay: no memory");
		return;
	}
	lua_rawgeti(main_L, LUA_REGISTRYINDEX, c->cb_ref);
	lua_getfield(main_L, -1, "max_message");
	wslay_event_config_set_max_recv_msg_length(c->ctx, (uint64_t)luaL_optinteger(main_L, -1, 4 << 20));
	lua_pop(main_L, 2);
	ev_timer_stop(loop(), &c->timer);
	c->state = OPEN;
	wake(c);
	if (c->early) {  /* read them now: the socket may stay quiet */
		if (wslay_event_recv(c->ctx) != 0) {
			finish(c, c->error[0] ? c->error : "a broken frame");
			return;
		}
		deliver(c);
	}
	if (c->state == OPEN)
		open_events(c);
}

static void handshake_io(conn *c)
{
	char why[160];
	ssize_t n;
	int head;

	while (c->out_off < c->out_len) {
		n = raw_write(c, c->out + c->out_off, c->out_len - c->out_off);
		if (n < 0)
			{ finish(c, c->error); return; }
		if (n == 0)
			{ want(c, c->ssl && SSL_want_read(c->ssl) ? EV_READ : EV_WRITE); return; }
		c->out_off += (size_t)n;
	}
	for (;;) {
		n = raw_read(c, c->out + c->in_len, sizeof c->out - c->in_len);
		if (n < 0)
			{ finish(c, c->error); return; }
		if (n == 0)
			{ want(c, EV_READ); return; }
		c->in_len += (size_t)n;
		head = ws_check_answer(c->out, c->in_len, c->accept, why, sizeof why);
		if (head < 0)
			{ finish(c, why); return; }
		if (head > 0)
			{ become_open(c, (size_t)head); return; }
		if (c->in_len == sizeof c->out)
			{ finish(c, "an answer head too long"); return; }
	}
}

static void tls_io(conn *c)
{
	int r = SSL_connect(c->ssl);

	if (r == 1)
		{ start_handshake(c); return; }
	r = SSL_get_error(c->ssl, r);
	if (r == SSL_ERROR_WANT_READ)
		{ want(c, EV_READ); return; }
	if (r == SSL_ERROR_WANT_WRITE)
		{ want(c, EV_WRITE); return; }
	snprintf(c->error, sizeof c->error, "TLS handshake with %.200s: %s", c->url.host,
	         SSL_get_verify_result(c->ssl) != X509_V_OK
	         ? X509_verify_cert_error_string(SSL_get_verify_result(c->ssl))
	         : ERR_reason_error_string(ERR_peek_last_error()) ? ERR_reason_error_string(ERR_peek_last_error())
	         : "failed");
	finish(c, NULL);
}

static int start_tls(conn *c)
{
	if (tls_ctx == NULL) {
		const char *ca = getenv("NOMADE_CA_FILE");
		tls_ctx = SSL_CTX_new(TLS_client_method());
		if (tls_ctx == NULL)
			return -1;
		SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
		SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
		if (ca ? SSL_CTX_load_verify_locations(tls_ctx, ca, NULL) != 1
		       : SSL_CTX_set_default_verify_paths(tls_ctx) != 1)
			return -1;
	}
	if ((c->ssl = SSL_new(tls_ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1
	    || SSL_set_tlsext_host_name(c->ssl, c->url.host) != 1 || SSL_set1_host(c->ssl, c->url.host) != 1)
		return -1;
	c->state = TLS;
	return 0;
}

static void on_io(struct ev_loop *l, ev_io *w, int revents)
{
	conn *c = (conn *)((char *)w - offsetof(conn, io));
	int err = 0;
	socklen_t elen = sizeof err;

	(void)l, (void)revents;
	switch (c->state) {
	case CONNECTING:
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
			snprintf(c->error, sizeof c->error, "connect to %.200s:%s: %s", c->url.host, c->url.port,
			         strerror(err ? err : errno));
			{ finish(c, NULL); return; }
		}
		if (!c->url.tls)
			{ start_handshake(c); return; }
		if (start_tls(c) != 0)
			{ finish(c, "TLS set-up failed"); return; }
		{ tls_io(c); return; }
	case TLS:
		{ tls_io(c); return; }
	case HANDSHAKE:
		{ handshake_io(c); return; }
	case OPEN:
		if (((revents & EV_READ) && wslay_event_recv(c->ctx) != 0)
		    || ((revents & EV_WRITE) && wslay_event_send(c->ctx) != 0))
			{ finish(c, c->error[0] ? c->error : "a broken frame, or over the size limit"); return; }
		deliver(c);
		if (c->state == OPEN)
			open_events(c);
		return;
	default:
		return;
	}
}

static void on_timeout(struct ev_loop *l, ev_timer *t, int revents)
{
	conn *c = (conn *)((char *)t - offsetof(conn, timer));

	(void)l, (void)revents;
	snprintf(c->error, sizeof c->error, "no connection to %.200s:%s within the timeout", c->url.host, c->url.port);
	finish(c, NULL);
}

/* a non-blocking socket connecting to the URL's host, or -1 */
static int dial(conn *c)
{
	struct addrinfo hints, *res = NULL, *ai;
	int rc, fd = -1;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(c->url.host, c->url.port, &hints, &res)) != 0) {
		snprintf(c->error, sizeof c->error, "%.200s: %s", c->url.host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS)
			break;
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		snprintf(c->error, sizeof c->error, "connect to %.200s:%s: %s", c->url.host, c->url.port, strerror(errno));
	freeaddrinfo(res);
	return fd;
}

static conn *check_conn(lua_State *L)
{
	return (conn *)luaL_checkudata(L, 1, CONN_MT);
}

static int l_connect(lua_State *L)
{
	const char *url = luaL_checkstring(L, 1);
	conn *c;
	char why[160];
	double timeout;
	int wait;

	luaL_checktype(L, 2, LUA_TTABLE);
	wait = sched_can_wait(L, "ws.connect");
	lua_getfield(L, 2, "timeout");
	timeout = luaL_optnumber(L, -1, 10);
	lua_pop(L, 1);
	c = (conn *)lua_newuserdatauv(L, sizeof *c, 0);
	memset(c, 0, sizeof *c);
	c->fd = -1, c->self_ref = c->cb_ref = LUA_NOREF;
	luaL_setmetatable(L, CONN_MT);
	if (ws_parse_url(url, &c->url, why, sizeof why) != 0)
		return luaL_error(L, "ws.connect: %s", why);
	lua_pushvalue(L, 2);
	c->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	if ((c->fd = dial(c)) < 0) {
		c->state = CLOSED;
		lua_pushnil(L);
		lua_pushstring(L, c->error);
		return 2;
	}
	lua_pushvalue(L, -1);
	c->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);  /* the loop owns it while it lives */
	ev_io_init(&c->io, on_io, c->fd, EV_WRITE);
	ev_io_start(loop(), &c->io);
	ev_timer_init(&c->timer, on_timeout, timeout, 0);
	ev_timer_start(loop(), &c->timer);
	if (wait) {
		c->waiting = 1;
		return sched_wait(L, &c->wait, "ws.connect", cancel, -1);  /* wake() resumes with conn or nil, err */
	}
	{
		struct budget *was = sched_block_begin();
		wait = sched_allow_blocking(L, 0);  /* the blocking form, a command's: the loop runs meanwhile */
		while (c->state != OPEN && c->state != CLOSED)
			ev_run(loop(), EVRUN_ONCE);
		sched_allow_blocking(L, wait);
		sched_block_end(was);
	}
	if (c->state == OPEN)
		return 1;
	lua_pushnil(L);
	lua_pushstring(L, c->error);
	return 2;
}

static int queue(lua_State *L, int opcode, size_t arg)
{
	conn *c = check_conn(L);
	struct wslay_event_msg m;
	size_t len = 0;
	const char *data = luaL_optlstring(L, (int)arg, "", &len);

	if (c->state != OPEN) {
		lua_pushnil(L);
		lua_pushstring(L, "ws: the connection is not open");
		return 2;
	}
	m.opcode = (uint8_t)opcode, m.msg = (const uint8_t *)data, m.msg_length = len;
	if (wslay_event_queue_msg(c->ctx, &m) != 0) {
		lua_pushnil(L);
		lua_pushstring(L, "ws: the message cannot be queued (closing, or too big)");
		return 2;
	}
	open_events(c);
	lua_pushboolean(L, 1);
	return 1;
}

static int c_send(lua_State *L)
{
	luaL_checkstring(L, 2);
	return queue(L, WSLAY_TEXT_FRAME, 2);
}

static int c_ping(lua_State *L) { return queue(L, WSLAY_PING, 2); }

static int c_close(lua_State *L)
{
	conn *c = check_conn(L);
	size_t len = 0;
	const char *reason = luaL_optlstring(L, 3, "", &len);

	if (lua_toboolean(L, 4) && c->state != CLOSED) {  /* now: a dead peer would never answer */
		c->closed_code = 1006;
		finish(c, "closed without waiting for the peer");
	} else if (c->state == OPEN && wslay_event_queue_close(c->ctx, (uint16_t)luaL_optinteger(L, 2, 1000),
	                                                (const uint8_t *)reason, len > 123 ? 123 : len) == 0) {
		open_events(c);
	} else if (c->state != CLOSED) {
		finish(c, "closed");
	}
	return 0;
}

static int c_index(lua_State *L)
{
	conn *c = check_conn(L);
	const char *k = luaL_checkstring(L, 2);

	if (!strcmp(k, "open"))
		lua_pushboolean(L, c->state == OPEN);
	else if (luaL_getmetafield(L, 1, "methods") != LUA_TNIL)
		lua_getfield(L, -1, k);
	else
		lua_pushnil(L);
	return 1;
}

static int c_gc(lua_State *L)
{
	conn *c = check_conn(L);

	release_io(c);
	free_msgs(c);
	if (c->cb_ref != LUA_NOREF)
		luaL_unref(L, LUA_REGISTRYINDEX, c->cb_ref);
	c->cb_ref = LUA_NOREF;
	c->state = CLOSED;
	return 0;
}

static const luaL_Reg methods[] = {
	{"send", c_send},
	{"ping", c_ping},
	{"close", c_close},
	{NULL, NULL}
};

static const luaL_Reg funcs[] = {
	{"connect", l_connect},
	{NULL, NULL}
};

int luaopen_nomade_ws(lua_State *L)
{
	main_L = host_main(L);
	if (luaL_newmetatable(L, CONN_MT)) {
		lua_pushcfunction(L, c_index);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, c_gc);
		lua_setfield(L, -2, "__gc");
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "methods");
	}
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
