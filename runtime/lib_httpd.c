/*
 * lib_httpd.c: nomade.httpd, a small HTTP server on the event loop for the
 * dashboard. Requests are parsed by Debian's libmicrohttpd (its epoll fd
 * watched by libev, no threads of its own); Lua sees each request whole
 * and answers it at once, or opens a stream (Server-Sent Events) that it
 * writes to later. A streamed connection with nothing to send is
 * suspended, and resumed by the next write, so an idle dashboard costs
 * nothing.
 *
 *   httpd.listen{host = "127.0.0.1", port = 8080, handler = fn(req),
 *                max_body = 65536, connections = 256, per_ip = 16,
 *                idle = 10, wait = 60, max_unsent = 4 MB}
 *     -> server, or nil, err
 *     req = {method, path, query = {k = v}, headers = {name = v} (lower
 *            case), body}
 *     fn returns {status, headers = {...}, body} or {status, headers,
 *     stream = fn(st)}: st:send(text) -> true or false when closed,
 *     st:close(), st:open(); on_close = fn() when the client goes
 *   server.port, server.connections (open now), server:close()
 * The handler, the stream function and on_close each run in a coroutine
 * of their own, as every event handler: a handler that yields (waits for
 * I/O) has its connection suspended and answered once it returns, and
 * the loop goes on meanwhile. A handler that fails answers 500.
 *
 * Hostile clients are normal clients. At most `connections` at once, and
 * `per_ip` from one address (more are closed at once); a connection with
 * no progress for `idle` s (a request that never ends, an answer never
 * read) is closed by libmicrohttpd. A suspended connection never times
 * out there, so the runtime keeps its own watch on them (the sweep,
 * every second while there are any): a handler still running after
 * `wait` s answers 503 (it runs on; only its client stops waiting), and
 * a suspended client that has gone away is closed then and there. A
 * stream whose client lets more than `max_unsent` bytes pile up unread
 * is dropped, as the REPL drops such a client: st:send answers false.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <ev.h>
#include <microhttpd.h>
#include <lauxlib.h>
#include "host.h"
#include "lib_sched.h"

#define SERVER_MT "nomade.httpd.server"
#define STREAM_MT "nomade.httpd.stream"

typedef struct request request;
typedef struct stream stream;

typedef struct {
	struct MHD_Daemon *d;
	ev_io io;
	ev_timer timer;
	ev_timer sweep;  /* the watch on suspended connections, while there are any */
	lua_State *L;
	int handler_ref, self_ref;
	int kick;  /* a connection was resumed: run again at once */
	size_t max_body, max_unsent;
	double wait;       /* s a handler may keep its client waiting */
	request *waiting;  /* the connections whose handler has yielded */
	stream *streams;   /* every open stream */
} server;

/* the Lua side of a stream: NULL once the connection is gone */
typedef struct {
	stream *s;
} stream_ud;

struct stream {
	struct MHD_Connection *conn;
	server *srv;
	char *buf;
	size_t len, off, cap;
	int suspended, closing, dropped;
	int ud_ref, close_ref;  /* the userdata (anchored while open), on_close */
	stream *next;           /* in srv->streams */
};

/* one request while its body arrives, then while its handler runs */
enum { READING, RUNNING, ANSWERED };

struct request {
	char *body;
	size_t len;
	int too_big, state, failed;  /* failed: 500, or the status that expired it */
	int answer_ref, holder_ref;  /* the handler's answer; the holder's userdata */
	struct MHD_Connection *conn;
	server *srv;
	request *next;  /* in srv->waiting while suspended */
	int suspended;
	ev_tstamp deadline;  /* when a waiting handler's client stops waiting */
};

/* the handler's coroutine's hold on its request: NULL once the
   connection is gone (the coroutine may outlive it) */
typedef struct {
	request *r;
} holder;

static struct ev_loop *loop(void) { return EV_DEFAULT; }

/* runs what is due and sets the timer to libmicrohttpd's next timeout;
   the sweep runs while a connection may be suspended */
static void pump(server *srv)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (!srv->d)
		return;
	srv->kick = 0;
	MHD_run(srv->d);
	if ((srv->waiting || srv->streams) && !ev_is_active(&srv->sweep))
		ev_timer_start(loop(), &srv->sweep);
	else if (!srv->waiting && !srv->streams)
		ev_timer_stop(loop(), &srv->sweep);
	ev_timer_stop(loop(), &srv->timer);
	if (srv->kick) {  /* resumed during this run (a handler wrote to a stream) */
		ev_timer_set(&srv->timer, 0., 0.);
		ev_timer_start(loop(), &srv->timer);
	} else if (MHD_get_timeout(srv->d, &ms) == MHD_YES) {
		ev_timer_set(&srv->timer, (double)ms / 1000.0, 0.);
		ev_timer_start(loop(), &srv->timer);
	}
}

static void on_io(struct ev_loop *l, ev_io *w, int revents)
{
	(void)l;
	(void)revents;
	pump((server *)w->data);
}

static void on_timer(struct ev_loop *l, ev_timer *t, int revents)
{
	(void)l;
	(void)revents;
	pump((server *)t->data);
}

/* a resumed connection is served by the next MHD_run, which without
   threads of its own libmicrohttpd leaves to us: at once */
static void resume(server *srv, struct MHD_Connection *conn)
{
	MHD_resume_connection(conn);
	srv->kick = 1;
	ev_timer_stop(loop(), &srv->timer);
	ev_timer_set(&srv->timer, 0., 0.);
	ev_timer_start(loop(), &srv->timer);
}

static int conn_fd(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	return info ? info->connect_fd : -1;
}

/* has the client of a suspended connection closed its side, or reset? */
static int gone(struct MHD_Connection *conn)
{
	int fd = conn_fd(conn);
	char c;
	ssize_t n;

	if (fd < 0)
		return 1;
	n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* ends a connection from outside libmicrohttpd, which has no call for
   it: its socket is shut down, and libmicrohttpd, seeing it fail, closes
   it and lets go of what it holds */
static void cut(struct MHD_Connection *conn)
{
	int fd = conn_fd(conn);

	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

/* ---- streams */

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
	stream *s = (stream *)cls;
	size_t n;

	(void)pos;
	if (s->dropped)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (s->len > s->off) {
		n = s->len - s->off < max ? s->len - s->off : max;
		memcpy(out, s->buf + s->off, n);
		s->off += n;
		if (s->off == s->len)
			s->off = s->len = 0;
		return (ssize_t)n;
	}
	if (s->closing)
		return MHD_CONTENT_READER_END_OF_STREAM;
	MHD_suspend_connection(s->conn);  /* until there is something to send */
	s->suspended = 1;
	return 0;
}

/* the connection is gone: the Lua side learns it, and nothing is kept */
static void stream_free(void *cls)
{
	stream *s = (stream *)cls;
	lua_State *L = s->srv->L;
	stream **p = &s->srv->streams;

	while (*p != s)
		p = &(*p)->next;
	*p = s->next;
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->ud_ref);
	((stream_ud *)lua_touserdata(L, -1))->s = NULL;
	lua_pop(L, 1);
	luaL_unref(L, LUA_REGISTRYINDEX, s->ud_ref);
	if (s->close_ref != LUA_NOREF) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, s->close_ref);
		luaL_unref(L, LUA_REGISTRYINDEX, s->close_ref);
		sched_spawn(L, 0, "httpd: on_close");
	}
	free(s->buf);
	free(s);
}

static void wake(stream *s)
{
	if (s->suspended) {
		s->suspended = 0;
		resume(s->srv, s->conn);
	}
}

/* the client is gone or reads too little: the stream ends now, and what
   it had not read is let go */
static void drop(stream *s)
{
	s->dropped = s->closing = 1;
	free(s->buf);
	s->buf = NULL;
	s->len = s->off = s->cap = 0;
	cut(s->conn);
	wake(s);
}

static stream *check_stream(lua_State *L)
{
	return ((stream_ud *)luaL_checkudata(L, 1, STREAM_MT))->s;
}

static int st_send(lua_State *L)
{
	stream *s = check_stream(L);
	size_t n;
	const char *text = luaL_checklstring(L, 2, &n);

	if (!s || s->closing) {
		lua_pushboolean(L, 0);
		return 1;
	}
	if (s->len - s->off + n > s->srv->max_unsent) {
		drop(s);
		lua_pushboolean(L, 0);
		return 1;
	}
	if (s->len + n > s->cap) {
		size_t cap = (s->len + n) * 2;
		char *nb = (char *)realloc(s->buf, cap);
		if (!nb)
			return luaL_error(L, "httpd: stream send: out of memory");
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, text, n);
	s->len += n;
	wake(s);
	lua_pushboolean(L, 1);
	return 1;
}

static int st_close(lua_State *L)
{
	stream *s = check_stream(L);

	if (s && !s->closing) {
		s->closing = 1;
		wake(s);
	}
	return 0;
}

static int st_open(lua_State *L)
{
	stream *s = check_stream(L);
	lua_pushboolean(L, s && !s->closing);
	return 1;
}

/* ---- requests */

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	lua_State *L = (lua_State *)cls;
	char name[128];
	size_t k;

	if (!key)
		return MHD_YES;
	for (k = 0; k < sizeof name - 1 && key[k]; k++)
		name[k] = (char)(kind == MHD_HEADER_KIND && key[k] >= 'A' && key[k] <= 'Z' ? key[k] + 32 : key[k]);
	name[k] = '\0';
	lua_pushstring(L, value ? value : "");
	lua_setfield(L, -2, name);
	return MHD_YES;
}

static void push_request(lua_State *L, struct MHD_Connection *conn, const char *url, const char *method,
                         const request *r)
{
	lua_createtable(L, 0, 5);
	lua_pushstring(L, method);
	lua_setfield(L, -2, "method");
	lua_pushstring(L, url);
	lua_setfield(L, -2, "path");
	lua_newtable(L);
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect, L);
	lua_setfield(L, -2, "query");
	lua_newtable(L);
	MHD_get_connection_values(conn, MHD_HEADER_KIND, collect, L);
	lua_setfield(L, -2, "headers");
	lua_pushlstring(L, r->body ? r->body : "", r->len);
	lua_setfield(L, -2, "body");
}

/* the response's headers from the table at idx */
static void add_headers(lua_State *L, int idx, struct MHD_Response *resp)
{
	lua_getfield(L, idx, "headers");
	if (lua_istable(L, -1)) {
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING)
				MHD_add_response_header(resp, lua_tostring(L, -2), lua_tostring(L, -1));
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
}

static enum MHD_Result plain(struct MHD_Connection *conn, unsigned status, const char *text)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), (void *)text,
	                                                            MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* a stream: its userdata, anchored while the connection lasts, handed to
   the answer's stream function */
static enum MHD_Result open_stream(server *srv, struct MHD_Connection *conn, int res, unsigned status)
{
	lua_State *L = srv->L;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	stream_ud *ud;
	stream *s = (stream *)calloc(1, sizeof *s);

	if (!s)
		return plain(conn, 500, "{\"error\":\"out of memory\"}");
	s->conn = conn;
	s->srv = srv;
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
	if (!resp) {
		free(s);
		return plain(conn, 500, "{\"error\":\"cannot stream\"}");
	}
	s->next = srv->streams;
	srv->streams = s;
	add_headers(L, res, resp);
	ud = (stream_ud *)lua_newuserdatauv(L, sizeof *ud, 0);
	ud->s = s;
	luaL_setmetatable(L, STREAM_MT);
	s->ud_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_getfield(L, res, "on_close");
	s->close_ref = lua_isfunction(L, -1) ? luaL_ref(L, LUA_REGISTRYINDEX) : (lua_pop(L, 1), LUA_NOREF);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	lua_getfield(L, res, "stream");
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->ud_ref);
	sched_spawn(L, 1, "httpd: stream");
	return ret;
}

/* the handler's answer (a table at the top) to the wire */
static enum MHD_Result answer(server *srv, struct MHD_Connection *conn)
{
	lua_State *L = srv->L;
	int res = lua_gettop(L);
	unsigned status;
	size_t n;
	const char *body;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (!lua_istable(L, res))
		return plain(conn, 500, "{\"error\":\"the handler answered no table\"}");
	lua_getfield(L, res, "status");
	status = (unsigned)luaL_optinteger(L, -1, 200);
	lua_pop(L, 1);
	if (status < 100 || status > 599)
		return plain(conn, 500, "{\"error\":\"the handler answered a bad status\"}");
	lua_getfield(L, res, "stream");
	if (lua_isfunction(L, -1)) {
		lua_pop(L, 1);
		return open_stream(srv, conn, res, status);
	}
	lua_pop(L, 1);
	lua_getfield(L, res, "body");
	body = lua_tolstring(L, -1, &n);
	resp = MHD_create_response_from_buffer(body ? n : 0, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
	lua_pop(L, 1);
	add_headers(L, res, resp);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* a suspended request, answered now: out of the waiting list, resumed */
static void unwait(request *r)
{
	request **p = &r->srv->waiting;

	while (*p != r)
		p = &(*p)->next;
	*p = r->next;
	r->suspended = 0;
	resume(r->srv, r->conn);
}

/* where the handler's coroutine ends, at once or after yields: its
   answer (or failure) kept for the connection, which is resumed if it
   was suspended; nothing if the client has gone or stopped waiting */
static int handler_done(lua_State *L, int status, lua_KContext ctx)
{
	request *r = ((holder *)lua_touserdata(L, 1))->r;

	(void)ctx;
	if (status != LUA_OK && status != LUA_YIELD) {
		host_report(L, "httpd: handler");
		lua_pushnil(L);
	}
	if (!r || r->state == ANSWERED)
		return 0;
	r->failed = status != LUA_OK && status != LUA_YIELD ? 500 : 0;
	r->answer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	r->state = ANSWERED;
	if (r->suspended)
		unwait(r);
	return 0;
}

/* the coroutine's body: holder, handler, req */
static int run_handler(lua_State *L)
{
	lua_pushcfunction(L, host_traceback);
	lua_insert(L, 2);
	return handler_done(L, lua_pcallk(L, 1, 1, 2, 0, handler_done), 0);
}

/* the handler's answer to the wire, once it is there */
static enum MHD_Result send_answer(server *srv, struct MHD_Connection *conn, request *r)
{
	lua_State *L = srv->L;
	int top = lua_gettop(L);
	enum MHD_Result ret;

	lua_rawgeti(L, LUA_REGISTRYINDEX, r->answer_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, r->answer_ref);
	r->answer_ref = LUA_NOREF;
	if (r->failed == 503)
		ret = plain(conn, 503, "{\"error\":\"not answered in time (it goes on)\"}");
	else
		ret = r->failed ? plain(conn, 500, "{\"error\":\"internal error\"}") : answer(srv, conn);
	lua_settop(L, top);
	return ret;
}

/* the handler, in a coroutine of its own: answered now, or the
   connection suspended until it returns */
static enum MHD_Result start_handler(server *srv, struct MHD_Connection *conn, const char *url, const char *method,
                                     request *r)
{
	lua_State *L = srv->L;
	int top = lua_gettop(L);
	holder *h;

	r->state = RUNNING;
	r->conn = conn;
	r->srv = srv;
	lua_pushcfunction(L, run_handler);
	h = (holder *)lua_newuserdatauv(L, sizeof *h, 0);
	h->r = r;
	lua_pushvalue(L, -1);
	r->holder_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_rawgeti(L, LUA_REGISTRYINDEX, srv->handler_ref);
	push_request(L, conn, url, method, r);
	if (sched_spawn(L, 3, "httpd: handler") != 0)
		r->state = ANSWERED, r->failed = 500;
	lua_settop(L, top);
	if (r->state == ANSWERED)
		return send_answer(srv, conn, r);
	MHD_suspend_connection(conn);
	r->suspended = 1;
	r->deadline = ev_now(loop()) + srv->wait;
	r->next = srv->waiting;
	srv->waiting = r;
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **ctx)
{
	server *srv = (server *)cls;
	request *r = (request *)*ctx;

	(void)version;
	if (!r) {  /* the headers are in: the body may follow */
		r = (request *)calloc(1, sizeof *r);
		if (!r)
			return MHD_NO;
		r->answer_ref = r->holder_ref = LUA_NOREF;
		*ctx = r;
		return MHD_YES;
	}
	if (*size) {
		if (!r->too_big && r->len + *size <= srv->max_body) {
			char *nb = (char *)realloc(r->body, r->len + *size);
			if (!nb)
				return MHD_NO;
			memcpy(nb + r->len, data, *size);
			r->body = nb;
			r->len += *size;
		} else {
			r->too_big = 1;
		}
		*size = 0;
		return MHD_YES;
	}
	if (r->state == ANSWERED)  /* resumed: the handler has returned */
		return send_answer(srv, conn, r);
	if (r->state == RUNNING)
		return MHD_YES;
	if (r->too_big)
		return plain(conn, 413, "{\"error\":\"the request body is too large\"}");
	return start_handler(srv, conn, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **ctx, enum MHD_RequestTerminationCode why)
{
	server *srv = (server *)cls;
	request *r = (request *)*ctx;

	(void)conn;
	(void)why;
	if (r) {
		if (r->holder_ref != LUA_NOREF) {
			lua_rawgeti(srv->L, LUA_REGISTRYINDEX, r->holder_ref);
			((holder *)lua_touserdata(srv->L, -1))->r = NULL;
			lua_pop(srv->L, 1);
			luaL_unref(srv->L, LUA_REGISTRYINDEX, r->holder_ref);
		}
		luaL_unref(srv->L, LUA_REGISTRYINDEX, r->answer_ref);
		free(r->body);
		free(r);
		*ctx = NULL;
	}
}

/* ---- the server */

/* the watch on suspended connections, which libmicrohttpd never times
   out: a handler past its time answers 503, a client gone is closed */
static void on_sweep(struct ev_loop *l, ev_timer *t, int revents)
{
	server *srv = (server *)t->data;
	request *r, *next;
	stream *s;

	(void)revents;
	for (r = srv->waiting; r; r = next) {
		next = r->next;
		if (gone(r->conn))
			cut(r->conn);
		else if (ev_now(l) < r->deadline)
			continue;
		r->state = ANSWERED;
		r->failed = 503;
		unwait(r);
	}
	for (s = srv->streams; s; s = s->next)
		if (s->suspended && gone(s->conn))
			drop(s);
}

static server *check_server(lua_State *L)
{
	return (server *)luaL_checkudata(L, 1, SERVER_MT);
}

static void stop(server *srv)
{
	if (!srv->d)
		return;
	while (srv->waiting) {  /* handlers still running: their connections end with the server */
		request *r = srv->waiting;
		srv->waiting = r->next;
		r->suspended = 0;
		MHD_resume_connection(r->conn);
	}
	ev_io_stop(loop(), &srv->io);
	ev_timer_stop(loop(), &srv->timer);
	ev_timer_stop(loop(), &srv->sweep);
	MHD_stop_daemon(srv->d);
	srv->d = NULL;
	luaL_unref(srv->L, LUA_REGISTRYINDEX, srv->handler_ref);
	luaL_unref(srv->L, LUA_REGISTRYINDEX, srv->self_ref);
	srv->handler_ref = srv->self_ref = LUA_NOREF;
}

/* an integer option of listen's table, at least min */
static lua_Integer count_opt(lua_State *L, const char *name, lua_Integer def, lua_Integer min)
{
	lua_Integer v;

	lua_getfield(L, 1, name);
	v = luaL_optinteger(L, -1, def);
	lua_pop(L, 1);
	if (v < min || v > 0x7fffffff)
		luaL_error(L, "httpd.listen: %s must be an integer from %d", name, (int)min);
	return v;
}

static int h_listen(lua_State *L)
{
	struct sockaddr_in addr;
	const char *host;
	lua_Integer port, max_body, connections, per_ip, idle, max_unsent;
	double wait;
	server *srv;
	const union MHD_DaemonInfo *info;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "host");
	host = luaL_optstring(L, -1, "127.0.0.1");
	lua_getfield(L, 1, "port");
	port = luaL_optinteger(L, -1, 8080);
	lua_getfield(L, 1, "handler");
	luaL_argcheck(L, lua_isfunction(L, -1), 1, "httpd.listen: handler must be a function");
	lua_getfield(L, 1, "max_body");
	max_body = luaL_optinteger(L, -1, 65536);
	luaL_argcheck(L, max_body >= 0, 1, "httpd.listen: max_body must be >= 0");
	connections = count_opt(L, "connections", 256, 1);
	per_ip = count_opt(L, "per_ip", 16, 1);
	idle = count_opt(L, "idle", 10, 1);
	max_unsent = count_opt(L, "max_unsent", 4 << 20, 1);
	lua_getfield(L, 1, "wait");
	wait = luaL_optnumber(L, -1, 60);
	lua_pop(L, 1);
	luaL_argcheck(L, wait > 0, 1, "httpd.listen: wait must be > 0 (seconds)");
	memset(&addr, 0, sizeof addr);
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	if (port < 0 || port > 65535 || inet_pton(AF_INET, host, &addr.sin_addr) != 1)
		return luaL_error(L, "httpd.listen: host must be an IPv4 address and port 0..65535");
	srv = (server *)lua_newuserdatauv(L, sizeof *srv, 0);
	memset(srv, 0, sizeof *srv);
	srv->L = host_main(L);  /* handlers are spawned from it, long after this call */
	srv->max_body = (size_t)max_body;
	srv->wait = wait;
	srv->max_unsent = (size_t)max_unsent;
	luaL_setmetatable(L, SERVER_MT);
	srv->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_request, srv,
	                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
	                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
	                          MHD_OPTION_CONNECTION_LIMIT, (unsigned int)connections,
	                          MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)per_ip,
	                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)idle,
	                          MHD_OPTION_END);
	if (!srv->d) {
		lua_pushnil(L);
		lua_pushfstring(L, "httpd: cannot listen on %s:%d", host, (int)port);
		return 2;
	}
	info = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_EPOLL_FD);
	ev_io_init(&srv->io, on_io, info->epoll_fd, EV_READ);
	srv->io.data = srv;
	ev_io_start(loop(), &srv->io);
	ev_timer_init(&srv->timer, on_timer, 0., 0.);
	srv->timer.data = srv;
	ev_timer_init(&srv->sweep, on_sweep, 1., 1.);
	srv->sweep.data = srv;
	lua_pushvalue(L, 4);
	srv->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushvalue(L, -1);
	srv->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);  /* the loop holds it while it listens */
	pump(srv);
	return 1;
}

static int s_close(lua_State *L)
{
	stop(check_server(L));
	return 0;
}

static int s_index(lua_State *L)
{
	server *srv = check_server(L);
	const char *k = luaL_checkstring(L, 2);

	if (!strcmp(k, "port")) {
		const union MHD_DaemonInfo *info = srv->d ? MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
		if (!info)
			return 0;
		lua_pushinteger(L, info->port);
		return 1;
	}
	if (!strcmp(k, "connections")) {
		const union MHD_DaemonInfo *info = srv->d ? MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS) : NULL;
		lua_pushinteger(L, info ? (lua_Integer)info->num_connections : 0);
		return 1;
	}
	if (!strcmp(k, "close")) {
		lua_pushcfunction(L, s_close);
		return 1;
	}
	return 0;
}

static int s_gc(lua_State *L)
{
	stop(check_server(L));
	return 0;
}

static const luaL_Reg stream_methods[] = {
	{"send", st_send},
	{"close", st_close},
	{"open", st_open},
	{NULL, NULL}
};

int luaopen_nomade_httpd(lua_State *L)
{
	static const luaL_Reg funcs[] = {{"listen", h_listen}, {NULL, NULL}};

	if (luaL_newmetatable(L, SERVER_MT)) {
		lua_pushcfunction(L, s_index);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, s_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	if (luaL_newmetatable(L, STREAM_MT)) {
		luaL_newlib(L, stream_methods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
