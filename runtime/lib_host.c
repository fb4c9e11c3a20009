/*
 * lib_host.c: nomade.host, what Lua code may ask of the host itself:
 * its version, files, and a call under a budget (lib_sched.c's, also
 * nomade.sched.limit).
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <curl/curl.h>
#include <ev.h>
#include <lauxlib.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include "host.h"
#include "lib_sched.h"

static int h_versions(lua_State *L)
{
	lua_createtable(L, 0, 6);
	lua_pushstring(L, NOMADE_VERSION);
	lua_setfield(L, -2, "nomade");
	lua_pushstring(L, LUA_RELEASE);
	lua_setfield(L, -2, "lua");
	lua_pushfstring(L, "%d.%d", ev_version_major(), ev_version_minor());
	lua_setfield(L, -2, "libev");
	lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
	lua_setfield(L, -2, "libcurl");
	lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
	lua_setfield(L, -2, "openssl");
	lua_pushstring(L, sqlite3_libversion());
	lua_setfield(L, -2, "sqlite");
	return 1;
}

/* host.isatty(fd): is file descriptor fd (0, 1 or 2) a terminal? */
static int h_isatty(lua_State *L)
{
	lua_Integer fd = luaL_checkinteger(L, 1);
	lua_pushboolean(L, fd >= 0 && fd <= 2 && isatty((int)fd));
	return 1;
}

/* host.embedded(path): source and chunk name of a file compiled into
   the binary from lua/ (e.g. "lua/strategy.lua"), or nil */
static int h_embedded(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	int i;

	for (i = 0; embedded_lua[i].module; i++) {
		if (strcmp(embedded_lua[i].chunkname + 1, path) == 0) {
			lua_pushlstring(L, embedded_lua[i].source, embedded_lua[i].len);
			lua_pushstring(L, embedded_lua[i].chunkname);
			return 2;
		}
	}
	lua_pushnil(L);
	return 1;
}

/* host.mkdir(path): creates path and its parents (0755); true, or nil
   and the reason. An existing directory is fine. */
static int h_mkdir(lua_State *L)
{
	size_t len;
	const char *path = luaL_checklstring(L, 1, &len);
	luaL_Buffer b;
	char *p;
	size_t i;

	p = luaL_buffinitsize(L, &b, len + 1);
	memcpy(p, path, len + 1);
	for (i = 1; i <= len; i++) {
		struct stat st;
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0755) != 0 && (errno != EEXIST || stat(p, &st) != 0 || !S_ISDIR(st.st_mode))) {
			int e = errno == EEXIST ? ENOTDIR : errno;
			lua_pushnil(L);
			lua_pushfstring(L, "%s: %s", p, strerror(e));
			return 2;
		}
		p[i] = i < len ? '/' : '\0';
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* host.argv0(): how this nomade was started ("nomade", "build/nomade") */
static int h_argv0(lua_State *L)
{
	lua_getfield(L, LUA_REGISTRYINDEX, "nomade.argv0");
	if (lua_isnil(L, -1))
		lua_pushliteral(L, "nomade");
	return 1;
}

/* host.file_mode(path): permission bits, whether we own it and its kind
   ("file", "directory" or "other"), or nil, err */
static int h_file_mode(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct stat st;

	if (stat(path, &st) != 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", path, strerror(errno));
		return 2;
	}
	lua_pushinteger(L, st.st_mode & 07777);
	lua_pushboolean(L, st.st_uid == getuid());
	lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : "other");
	return 3;
}

static int h_uid(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)getuid());
	return 1;
}

/* host.private_dir(path): true if path is a directory of ours, made 0700;
   nil and why if another user owns it (a shared /tmp must not be trusted) */
static int h_private_dir(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct stat st;

	if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: not a directory", path);
		return 2;
	}
	if (st.st_uid != getuid()) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: owned by another user", path);
		return 2;
	}
	if ((st.st_mode & 0777) != 0700 && chmod(path, 0700) != 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", path, strerror(errno));
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static const luaL_Reg funcs[] = {
	{"uid", h_uid},
	{"file_mode", h_file_mode},
	{"argv0", h_argv0},
	{"private_dir", h_private_dir},
	{"mkdir", h_mkdir},
	{"isatty", h_isatty},
	{"embedded", h_embedded},
	{"limit", sched_limit},
	{"guard", sched_guard},
	{"versions", h_versions},
	{NULL, NULL}
};

int luaopen_nomade_host(lua_State *L)
{
	luaL_newlib(L, funcs);
	lua_pushstring(L, NOMADE_VERSION);
	lua_setfield(L, -2, "version");
	return 1;
}
