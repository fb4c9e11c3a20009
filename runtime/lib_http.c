/*
 * lib_http.c: nomade.http, HTTP(S) for the runtime: libcurl's multi
 * socket API driven by the libev loop (the shape of curl's evhiperfifo,
 * with its flaws fixed: ms/1000.0, no exit(), no socket_action from the
 * timer callback itself).
 *
 *   http.request{method =, url =, headers = {"Name: value", ...} or
 *                {Name = value}, body =, timeout = s (default 10),
 *                on_data = fn(chunk), idle = s}
 *     -> status, headers (lower-case names), body   or   nil, err
 * With on_data the body is not kept but handed over as it comes (a
 * stream: Server-Sent Events), fn returning false ends the transfer,
 * redirects are followed, and idle cuts a transfer that receives nothing
 * for that long. fn runs in a coroutine of its own, as every event
 * handler, and never inside libcurl's callback: what arrived is handed
 * over from the loop right after (chunks that came meanwhile joined), so
 * fn may wait (a request of its own) while the stream goes on.
 * In an event handler (a coroutine of the sched) the call yields and the
 * loop resumes it when the transfer ends, or with nil, "cancelled" when
 * the sched cancels it (the transfer is removed then). The blocking form
 * is a command's (the CLI's `nomade bybit`, `tribunal ask`, a script, on
 * its main thread outside loop.run): the transfer runs to the end before
 * the call returns. Anywhere else (a sort comparator in a handler, a
 * metamethod, a coroutine of one's own) it raises
 * "http.request: cannot wait here".
 * A request whose method is not idempotent (POST, PATCH) is sent at most
 * once: libcurl would send it again when a reused connection dies under
 * it, and a repeated order is a double buy.
 * TLS peers are always verified (NOMADE_CA_FILE names a CA bundle; there
 * is no switch to turn verification off); proxies come from the
 * environment, as libcurl reads them.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <ev.h>
#include <lauxlib.h>
#include "host.h"
#include "lib_sched.h"

#define REQ_MT "nomade.http.req"
#define MAX_BODY (64 << 20)

typedef struct {
	char *p;
	size_t len, cap;
	int too_big;
} buffer;

/* a transfer: C memory owned by a userdata, so a Lua error frees it */
typedef struct {
	CURL *easy;
	struct curl_slist *headers;
	buffer body, head;
	buffer out;          /* a non-idempotent request's body, sent once */
	size_t sent;         /* how much of out libcurl has read */
	char error[CURL_ERROR_SIZE];
	struct sched_wait wait;  /* the waiting coroutine's, on the loop */
	int async;           /* on the loop (not a command's blocking call) */
	int self_ref, data_ref;  /* data_ref: on_data, or LUA_NOREF */
	ev_timer handover;   /* on_data's turn: the stream's body is what waits for it */
	int stop;            /* on_data returned false */
} request;

static struct {
	CURLM *multi;
	ev_timer timer;
	lua_State *L;  /* the main thread */
	int running;
} g;

static int append(buffer *b, const char *s, size_t n)
{
	if (b->len + n > MAX_BODY) {
		b->too_big = 1;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((p = (char *)realloc(b->p, cap)) == NULL)
			return 0;
		b->p = p, b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return 1;
}

static size_t on_body(char *s, size_t size, size_t n, void *ud)
{
	return append(&((request *)ud)->body, s, size * n) ? size * n : 0;
}

/* where on_data's coroutine ends: false ends the stream (a live
   transfer at the loop's next turn) */
static int data_done(lua_State *L, int status, lua_KContext ctx)
{
	request *r = (request *)lua_touserdata(L, 1);

	(void)status, (void)ctx;
	if (!lua_isboolean(L, -1) || lua_toboolean(L, -1))
		return 0;
	r->stop = 1;
	if (r->async && r->easy)
		ev_timer_start(EV_DEFAULT, &r->handover);
	return 0;
}

/* the coroutine's body: the request's userdata, on_data, the text */
static int run_data(lua_State *L)
{
	lua_callk(L, 1, 1, 0, data_done);
	return data_done(L, LUA_OK, 0);
}

/* what the stream has brought, to on_data in a coroutine of its own */
static void hand_over(request *r)
{
	lua_State *L = g.L;

	if (r->body.len == 0)
		return;
	lua_pushcfunction(L, run_data);
	lua_rawgeti(L, LUA_REGISTRYINDEX, r->self_ref);
	lua_rawgeti(L, LUA_REGISTRYINDEX, r->data_ref);
	lua_pushlstring(L, r->body.p, r->body.len);
	r->body.len = 0;
	sched_spawn(L, 3, "http: on_data");
}

/* a chunk of a stream: kept for on_data, which runs once libcurl's
   callback is over (a sync transfer has no loop: at once) */
static size_t on_stream(char *s, size_t size, size_t n, void *ud)
{
	request *r = (request *)ud;

	if (r->stop || !append(&r->body, s, size * n))
		return 0;
	if (!r->async)
		hand_over(r);
	else if (!ev_is_active(&r->handover))
		ev_timer_start(EV_DEFAULT, &r->handover);
	return r->stop ? 0 : size * n;
}

static size_t on_header(char *s, size_t size, size_t n, void *ud)
{
	return append(&((request *)ud)->head, s, size * n) ? size * n : 0;
}

/* the body of a request that must not be sent twice, read by libcurl */
static size_t on_read(char *s, size_t size, size_t n, void *ud)
{
	request *r = (request *)ud;
	size_t k = r->out.len - r->sent;

	if (k > size * n)
		k = size * n;
	memcpy(s, r->out.p + r->sent, k);
	r->sent += k;
	return k;
}

/* libcurl rewinds a body to send it again: after a reused connection
   died under the request, it resends it on a new one. Once any of it has
   gone, the server may have acted on it (an order): refused, so the
   transfer fails and the caller asks the server what it holds */
static int on_seek(void *ud, curl_off_t offset, int origin)
{
	request *r = (request *)ud;

	return r->sent == 0 && offset == 0 && origin == SEEK_SET ? CURL_SEEKFUNC_OK : CURL_SEEKFUNC_CANTSEEK;
}

/* may the transport send method twice? (RFC 9110's idempotent methods) */
static int idempotent(const char *method)
{
	return !strcmp(method, "GET") || !strcmp(method, "HEAD") || !strcmp(method, "PUT")
	       || !strcmp(method, "DELETE") || !strcmp(method, "OPTIONS");
}

static void req_free(request *r)
{
	ev_timer_stop(EV_DEFAULT, &r->handover);
	if (r->easy) {
		if (g.multi)
			curl_multi_remove_handle(g.multi, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	curl_slist_free_all(r->headers);
	r->headers = NULL;
	if (r->data_ref != LUA_NOREF && g.L) {
		luaL_unref(g.L, LUA_REGISTRYINDEX, r->data_ref);
		r->data_ref = LUA_NOREF;
	}
	free(r->body.p);
	free(r->head.p);
	free(r->out.p);
	memset(&r->body, 0, sizeof r->body);
	memset(&r->head, 0, sizeof r->head);
	memset(&r->out, 0, sizeof r->out);
}

static int req_gc(lua_State *L)
{
	req_free((request *)luaL_checkudata(L, 1, REQ_MT));
	return 0;
}

/* the request table at arg 1 into r's easy handle; raises on misuse,
   before anything can be half set up (the userdata owns what is made) */
static void setup(lua_State *L, request *r)
{
	const char *url, *method, *ca;
	size_t blen = 0;
	const char *body;
	double timeout, idle;

	lua_getfield(L, 1, "url");
	url = lua_tostring(L, -1);
	if (url == NULL || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))
		luaL_error(L, "http.request: url must be an http:// or https:// string");
	lua_getfield(L, 1, "method");
	method = luaL_optstring(L, -1, "GET");
	lua_getfield(L, 1, "body");
	body = lua_tolstring(L, -1, &blen);
	lua_getfield(L, 1, "timeout");
	timeout = luaL_optnumber(L, -1, 10);
	if (!(timeout > 0))
		luaL_error(L, "http.request: timeout must be > 0 seconds");
	lua_getfield(L, 1, "idle");
	idle = luaL_optnumber(L, -1, 0);
	lua_getfield(L, 1, "on_data");
	if (lua_isfunction(L, -1)) {
		lua_pushvalue(L, -1);
		r->data_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	lua_pop(L, 1);
	lua_getfield(L, 1, "headers");
	if (lua_istable(L, -1)) {
		lua_pushnil(L);
		while (lua_next(L, -2)) {  /* stack: headers, key, value */
			int named = lua_type(L, -2) == LUA_TSTRING;
			const char *line = luaL_tolstring(L, -1, NULL);
			if (named)
				line = lua_pushfstring(L, "%s: %s", lua_tostring(L, -3), line);
			r->headers = curl_slist_append(r->headers, line);
			lua_pop(L, named ? 3 : 2);  /* back to headers, key */
		}
	}
	r->easy = curl_easy_init();
	if (r->easy == NULL)
		luaL_error(L, "http.request: curl_easy_init failed");
	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
	if (body && !idempotent(method)) {
		if (!append(&r->out, body, blen))
			luaL_error(L, "http.request: body too large");
		r->headers = curl_slist_append(r->headers, "Expect:");  /* no 100-continue wait */
		curl_easy_setopt(r->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
		curl_easy_setopt(r->easy, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(r->easy, CURLOPT_READDATA, r);
		curl_easy_setopt(r->easy, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(r->easy, CURLOPT_SEEKDATA, r);
		curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
	} else if (body) {
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)blen);
		curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, body);
		curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, r->data_ref != LUA_NOREF ? on_stream : on_body);
	if (r->data_ref != LUA_NOREF) {  /* Firebase streams redirect (307) to the server holding the data */
		curl_easy_setopt(r->easy, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(r->easy, CURLOPT_MAXREDIRS, 5L);
	}
	if (idle > 0) {
		curl_easy_setopt(r->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(r->easy, CURLOPT_LOW_SPEED_TIME, (long)idle);
	}
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->error);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "nomade/" NOMADE_VERSION);
	if ((ca = getenv("NOMADE_CA_FILE")) != NULL && ca[0])
		curl_easy_setopt(r->easy, CURLOPT_CAINFO, ca);
}

/* pushes status, headers, body or nil, err; returns the count */
static int push_result(lua_State *L, request *r, CURLcode rc)
{
	long status = 0;
	size_t i = 0;

	if (rc != CURLE_OK || r->body.too_big) {
		lua_pushnil(L);
		if (r->body.too_big)
			lua_pushfstring(L, "response larger than %d bytes", MAX_BODY);
		else if (rc == CURLE_OPERATION_TIMEDOUT)
			lua_pushliteral(L, "timeout");
		else
			lua_pushstring(L, r->error[0] ? r->error : curl_easy_strerror(rc));
		return 2;
	}
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	lua_pushinteger(L, status);
	lua_newtable(L);  /* the last response's headers, names lower-cased */
	while (i < r->head.len) {
		const char *line = r->head.p + i, *end = (const char *)memchr(line, '\n', r->head.len - i);
		const char *colon;
		size_t n = end ? (size_t)(end - line) : r->head.len - i;
		i += n + 1;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n >= 5 && !strncmp(line, "HTTP/", 5)) {  /* a new response (after a 100, a redirect) */
			lua_pop(L, 1);
			lua_newtable(L);
			continue;
		}
		colon = (const char *)memchr(line, ':', n);
		if (colon) {
			const char *v = colon + 1;
			luaL_Buffer b;
			size_t k;
			while (v < line + n && (*v == ' ' || *v == '\t'))
				v++;
			luaL_buffinit(L, &b);
			for (k = 0; line + k < colon; k++)
				luaL_addchar(&b, (char)((line[k] >= 'A' && line[k] <= 'Z') ? line[k] + 32 : line[k]));
			luaL_pushresult(&b);
			lua_pushlstring(L, v, (size_t)(line + n - v));
			lua_rawset(L, -3);
		}
	}
	lua_pushlstring(L, r->body.p ? r->body.p : "", r->body.len);
	return 3;
}

/* the transfer is over for the loop: nothing of it is left but the
   userdata (the sched anchors it until the coroutine is resumed) */
static void let_go(request *r)
{
	int self = r->self_ref;

	req_free(r);
	r->async = 0;
	r->self_ref = LUA_NOREF;
	luaL_unref(g.L, LUA_REGISTRYINDEX, self);
}

/* a transfer ended: resume its coroutine with the result */
static void finish(request *r, CURLcode rc)
{
	int n;

	curl_multi_remove_handle(g.multi, r->easy);
	if (r->data_ref != LUA_NOREF && !r->stop)
		hand_over(r);  /* the stream's last chunk before its end */
	if (r->wait.co == NULL)
		return;  /* on_data cancelled it meanwhile */
	n = push_result(r->wait.co, r, rc);
	let_go(r);
	sched_wake(&r->wait, n);
}

/* the sched cancels the wait: the transfer is removed, never to finish */
static void cancel(struct sched_wait *w)
{
	let_go((request *)((char *)w - offsetof(request, wait)));
}

static void check_done(void)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(g.multi, &left)) != NULL) {
		if (msg->msg == CURLMSG_DONE) {
			request *r = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
			finish(r, msg->data.result);
		}
	}
}

/* on_data's turn for a transfer on the loop, or its end once it said so */
static void on_handover(struct ev_loop *loop, ev_timer *t, int revents)
{
	request *r = (request *)t->data;

	(void)loop, (void)revents;
	if (r->stop)
		finish(r, CURLE_WRITE_ERROR);
	else
		hand_over(r);
}

typedef struct {
	ev_io io;
	curl_socket_t fd;
} sock;

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	int flags = (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);

	(void)loop;
	curl_multi_socket_action(g.multi, ((sock *)w)->fd, flags, &g.running);
	check_done();
}

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop, (void)t, (void)revents;
	curl_multi_socket_action(g.multi, CURL_SOCKET_TIMEOUT, 0, &g.running);
	check_done();
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct ev_loop *loop = EV_DEFAULT;
	sock *k = (sock *)socketp;

	(void)e, (void)userp;
	if (what == CURL_POLL_REMOVE) {
		if (k) {
			ev_io_stop(loop, &k->io);
			free(k);
		}
		return 0;
	}
	if (k == NULL) {
		if ((k = (sock *)calloc(1, sizeof *k)) == NULL)
			return -1;
		k->fd = s;
		curl_multi_assign(g.multi, s, k);
	} else {
		ev_io_stop(loop, &k->io);
	}
	ev_io_init(&k->io, on_io, s, (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0));
	ev_io_start(loop, &k->io);
	return 0;
}

static int timer_cb(CURLM *m, long ms, void *userp)
{
	struct ev_loop *loop = EV_DEFAULT;

	(void)m, (void)userp;
	ev_timer_stop(loop, &g.timer);
	if (ms >= 0) {  /* 0 too goes through the loop, never straight back into curl */
		ev_timer_set(&g.timer, ms / 1000.0, 0);
		ev_timer_start(loop, &g.timer);
	}
	return 0;
}

static int l_request(lua_State *L)
{
	request *r;
	CURLcode rc;
	int wait;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	wait = sched_can_wait(L, "http.request");
	r = (request *)lua_newuserdatauv(L, sizeof *r, 0);  /* 2 */
	memset(r, 0, sizeof *r);
	r->self_ref = r->data_ref = LUA_NOREF;
	ev_timer_init(&r->handover, on_handover, 0., 0.);
	r->handover.data = r;
	luaL_setmetatable(L, REQ_MT);
	setup(L, r);
	lua_settop(L, 2);
	lua_pushvalue(L, 2);
	r->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	if (!wait) {  /* the blocking form, a command's: run it to the end */
		struct budget *was = sched_block_begin();
		rc = curl_easy_perform(r->easy);
		sched_block_end(was);
		luaL_unref(L, LUA_REGISTRYINDEX, r->self_ref);
		r->self_ref = LUA_NOREF;
		return push_result(L, r, rc);
	}
	r->async = 1;
	curl_multi_add_handle(g.multi, r->easy);
	return sched_wait(L, &r->wait, "http.request", cancel, 2);  /* finish() resumes with the result */
}

/* when the state closes: the multi handle and libcurl's globals */
static int cleanup(lua_State *L)
{
	(void)L;
	if (g.multi) {
		ev_timer_stop(EV_DEFAULT, &g.timer);
		curl_multi_cleanup(g.multi);
		g.multi = NULL;
		curl_global_cleanup();
	}
	return 0;
}

static const luaL_Reg funcs[] = {
	{"request", l_request},
	{NULL, NULL}
};

int luaopen_nomade_http(lua_State *L)
{
	if (g.multi == NULL) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		g.multi = curl_multi_init();
		curl_multi_setopt(g.multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
		curl_multi_setopt(g.multi, CURLMOPT_TIMERFUNCTION, timer_cb);
		ev_init(&g.timer, on_timer);
		g.L = host_main(L);
		lua_newuserdatauv(L, 0, 0);  /* a sentinel: its __gc runs at lua_close */
		lua_createtable(L, 0, 1);
		lua_pushcfunction(L, cleanup);
		lua_setfield(L, -2, "__gc");
		lua_setmetatable(L, -2);
		lua_setfield(L, LUA_REGISTRYINDEX, "nomade.http.cleanup");
	}
	if (luaL_newmetatable(L, REQ_MT)) {
		lua_pushcfunction(L, req_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
