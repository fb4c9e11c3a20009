/*
 * lib_term.c: nomade.term, what the REPL client needs from the terminal
 * and the socket: line editing and history with libedit (BSD licence),
 * plain line reads when stdin is not a terminal, and a blocking Unix
 * socket client.
 *   term.readline(prompt) -> line or nil at end of input
 *   term.history_load(path), term.history_save(path), term.history_add(line)
 *   term.connect(path) -> sock or nil, err; sock:send(s), sock:recv() ->
 *   bytes or nil at end, sock:close()
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <editline/readline.h>
#include <lauxlib.h>
#include "host.h"

#define SOCK_MT "nomade.term.sock"

static int t_readline(lua_State *L)
{
	const char *prompt = luaL_optstring(L, 1, "> ");
	char buf[8192];

	if (isatty(0)) {
		char *line = readline(prompt);
		if (line == NULL)
			return 0;
		lua_pushstring(L, line);
		free(line);
		return 1;
	}
	if (fgets(buf, sizeof buf, stdin) == NULL)
		return 0;
	buf[strcspn(buf, "\n")] = '\0';
	lua_pushstring(L, buf);
	return 1;
}

static int t_history_add(lua_State *L)
{
	add_history(luaL_checkstring(L, 1));
	return 0;
}

static int t_history_load(lua_State *L)
{
	read_history(luaL_checkstring(L, 1));  /* a missing file is no error */
	return 0;
}

static int t_history_save(lua_State *L)
{
	lua_pushboolean(L, write_history(luaL_checkstring(L, 1)) == 0);
	return 1;
}

static int *check_sock(lua_State *L)
{
	int *fd = (int *)luaL_checkudata(L, 1, SOCK_MT);
	if (*fd < 0)
		luaL_error(L, "attempt to use a closed socket");
	return fd;
}

static int t_connect(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	int *fd = (int *)lua_newuserdatauv(L, sizeof(int), 0);
	struct sockaddr_un a;

	*fd = -1;
	luaL_setmetatable(L, SOCK_MT);
	luaL_argcheck(L, strlen(path) < sizeof a.sun_path, 1, "socket path too long");
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	strcpy(a.sun_path, path);
	*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd < 0 || connect(*fd, (struct sockaddr *)&a, sizeof a) != 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", path, strerror(errno));
		return 2;
	}
	return 1;
}

static int s_send(lua_State *L)
{
	int *fd = check_sock(L);
	size_t n, done = 0;
	const char *s = luaL_checklstring(L, 2, &n);

	while (done < n) {
		ssize_t w = write(*fd, s + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			lua_pushnil(L);
			lua_pushstring(L, strerror(errno));
			return 2;
		}
		done += (size_t)w;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int s_recv(lua_State *L)
{
	int *fd = check_sock(L);
	char buf[16384];
	ssize_t n;

	do
		n = read(*fd, buf, sizeof buf);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 0;
	lua_pushlstring(L, buf, (size_t)n);
	return 1;
}

static int s_close(lua_State *L)
{
	int *fd = (int *)luaL_checkudata(L, 1, SOCK_MT);
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	return 0;
}

static const luaL_Reg sock_methods[] = {
	{"send", s_send},
	{"recv", s_recv},
	{"close", s_close},
	{NULL, NULL}
};

static const luaL_Reg funcs[] = {
	{"readline", t_readline},
	{"history_add", t_history_add},
	{"history_load", t_history_load},
	{"history_save", t_history_save},
	{"connect", t_connect},
	{NULL, NULL}
};

int luaopen_nomade_term(lua_State *L)
{
	if (luaL_newmetatable(L, SOCK_MT)) {
		luaL_newlib(L, sock_methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, s_close);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
