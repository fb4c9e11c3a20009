/*
 * lib_store.c: nomade.store, the SQLite the journal needs, as three calls.
 *   store.open(path [, "read"]) -> db or nil, err   (WAL, synchronous
 *                        NORMAL: a committed transaction survives a killed
 *                        process; "read": read-only, never created)
 *   db:exec(sql)       statements without parameters; errors raise
 *   db:run(sql, ...)   one statement with ? parameters (numbers, strings,
 *                      booleans, nil); returns the rows as arrays
 *   db:close()
 *   store.lock(path) -> lock or nil, err, pid   one process per journal:
 *                        an fcntl write lock on path (a sidecar file),
 *                        held until lock:close() or the process ends;
 *                        the holder's pid is written in it, and a
 *                        refusal names the pid that holds it. A lock
 *                        left by a dead process is no lock: the kernel
 *                        drops it with the process.
 * Statements are compiled once and kept per db (the journal repeats a few).
 * The WAL is checkpointed (which syncs the disk: milliseconds) only after
 * a db:exec outside a transaction, the journal's COMMIT of a candle, never
 * inside db:run (the rows of orders and fills, written as they happen);
 * a db only ever written by db:run is checkpointed at CHECKPOINT_MAX.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include <lauxlib.h>
#include "host.h"

#define DB_MT "nomade.store.db"
#define LOCK_MT "nomade.store.lock"

/* WAL pages past which a checkpoint is due (SQLite's own default), and
   past which db:run pays for it too */
#define CHECKPOINT_PAGES 1000
#define CHECKPOINT_MAX (8 * CHECKPOINT_PAGES)

typedef struct {
	sqlite3 *db;
	int wal_pages;  /* in the WAL since its last checkpoint */
} store;

/* after each commit: counted, not checkpointed (SQLite's autocheckpoint
   would do it inside whichever commit crossed the line) */
static int on_wal(void *arg, sqlite3 *db, const char *name, int pages)
{
	(void)db, (void)name;
	((store *)arg)->wal_pages = pages;
	return SQLITE_OK;
}

/* a passive checkpoint once pages are due, outside any transaction */
static void checkpoint(store *s, int due)
{
	if (s->wal_pages < due || !sqlite3_get_autocommit(s->db))
		return;
	sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	s->wal_pages = 0;
}

static store *check_db(lua_State *L)
{
	store *s = (store *)luaL_checkudata(L, 1, DB_MT);
	if (s->db == NULL)
		luaL_error(L, "attempt to use a closed journal database");
	return s;
}

static int st_open(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	int readonly = !strcmp(luaL_optstring(L, 2, "write"), "read");
	store *s = (store *)lua_newuserdatauv(L, sizeof *s, 1);
	char *msg = NULL;

	s->db = NULL;
	s->wal_pages = 0;
	luaL_setmetatable(L, DB_MT);
	lua_newtable(L);  /* sql -> prepared statement (light userdata) */
	lua_setiuservalue(L, -2, 1);
	if (sqlite3_open_v2(path, &s->db, readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
	                    NULL) != SQLITE_OK
	    || sqlite3_exec(s->db, readonly ? "PRAGMA busy_timeout=2000;" : "PRAGMA journal_mode=WAL;"
	                    " PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=2000;", NULL, NULL, &msg) != SQLITE_OK) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", path, msg ? msg : (s->db ? sqlite3_errmsg(s->db) : "cannot open"));
		sqlite3_free(msg);
		return 2;
	}
	sqlite3_wal_hook(s->db, on_wal, s);
	return 1;
}

static int st_exec(lua_State *L)
{
	store *s = check_db(L);
	char *msg = NULL;

	if (sqlite3_exec(s->db, luaL_checkstring(L, 2), NULL, NULL, &msg) != SQLITE_OK) {
		lua_pushstring(L, msg ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		return lua_error(L);
	}
	checkpoint(s, CHECKPOINT_PAGES);
	return 0;
}

/* the prepared statement for sql, compiled on first use */
static sqlite3_stmt *statement(lua_State *L, store *s, int sql)
{
	sqlite3_stmt *st;

	lua_getiuservalue(L, 1, 1);
	lua_pushvalue(L, sql);
	lua_rawget(L, -2);
	st = (sqlite3_stmt *)lua_touserdata(L, -1);
	lua_pop(L, 1);
	if (st == NULL) {
		if (sqlite3_prepare_v2(s->db, lua_tostring(L, sql), -1, &st, NULL) != SQLITE_OK)
			luaL_error(L, "journal: %s", sqlite3_errmsg(s->db));
		lua_pushvalue(L, sql);
		lua_pushlightuserdata(L, st);
		lua_rawset(L, -3);
	}
	lua_pop(L, 1);
	return st;
}

static void bind(lua_State *L, sqlite3_stmt *st, int i, int arg)
{
	switch (lua_type(L, arg)) {
	case LUA_TNUMBER:
		if (lua_isinteger(L, arg))
			sqlite3_bind_int64(st, i, lua_tointeger(L, arg));
		else
			sqlite3_bind_double(st, i, lua_tonumber(L, arg));
		break;
	case LUA_TSTRING: {
		size_t n;
		const char *v = lua_tolstring(L, arg, &n);
		sqlite3_bind_text(st, i, v, (int)n, SQLITE_TRANSIENT);
		break;
	}
	case LUA_TBOOLEAN:
		sqlite3_bind_int(st, i, lua_toboolean(L, arg));
		break;
	case LUA_TNIL:
	case LUA_TNONE:
		sqlite3_bind_null(st, i);
		break;
	default:
		sqlite3_reset(st);
		luaL_argerror(L, arg, "journal values are numbers, strings, booleans or nil");
	}
}

static void push_column(lua_State *L, sqlite3_stmt *st, int c)
{
	switch (sqlite3_column_type(st, c)) {
	case SQLITE_INTEGER:
		lua_pushinteger(L, sqlite3_column_int64(st, c));
		break;
	case SQLITE_FLOAT:
		lua_pushnumber(L, sqlite3_column_double(st, c));
		break;
	case SQLITE_NULL:
		lua_pushnil(L);
		break;
	default:
		lua_pushlstring(L, (const char *)sqlite3_column_text(st, c), (size_t)sqlite3_column_bytes(st, c));
	}
}

static int st_run(lua_State *L)
{
	store *s = check_db(L);
	sqlite3_stmt *st;
	int i, n = lua_gettop(L), rc, row = 0;

	luaL_checkstring(L, 2);
	st = statement(L, s, 2);
	for (i = 3; i <= n; i++)
		bind(L, st, i - 2, i);
	lua_newtable(L);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int c, cols = sqlite3_column_count(st);
		lua_createtable(L, cols, 0);
		for (c = 0; c < cols; c++) {
			push_column(L, st, c);
			lua_rawseti(L, -2, c + 1);
		}
		lua_rawseti(L, -2, ++row);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return luaL_error(L, "journal: %s", sqlite3_errmsg(s->db));
	checkpoint(s, CHECKPOINT_MAX);
	return 1;
}

static int st_close(lua_State *L)
{
	store *s = (store *)luaL_checkudata(L, 1, DB_MT);

	if (s->db) {
		sqlite3_stmt *st = NULL;
		while ((st = sqlite3_next_stmt(s->db, NULL)) != NULL)
			sqlite3_finalize(st);
		sqlite3_close(s->db);
		s->db = NULL;
	}
	return 0;
}

/* the pid that holds the lock on fd, as the kernel says, else as the
   holder wrote it; 0 if neither knows */
static long holder(int fd)
{
	struct flock fl;
	char buf[24];
	ssize_t n;

	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK && fl.l_pid > 0)
		return (long)fl.l_pid;
	n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

static int lock_refused(lua_State *L, const char *path, int err, long pid)
{
	lua_pushnil(L);
	if (pid > 0)
		lua_pushfstring(L, "%s is in use by pid %d", path, (int)pid);
	else
		lua_pushfstring(L, "%s: %s", path, strerror(err));
	lua_pushinteger(L, pid);
	return 3;
}

static int st_lock(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	int *fd = (int *)lua_newuserdatauv(L, sizeof *fd, 0);
	struct flock fl;
	char pid[24];
	int n;

	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		return lock_refused(L, path, errno, 0);
	luaL_setmetatable(L, LOCK_MT);  /* from here the fd is closed by __gc */
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(*fd, F_SETLK, &fl) != 0) {
		int err = errno;
		long who = err == EACCES || err == EAGAIN ? holder(*fd) : 0;
		close(*fd);
		*fd = -1;
		return lock_refused(L, path, err == EACCES || err == EAGAIN ? EAGAIN : err, who);
	}
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(*fd, 0) != 0 || pwrite(*fd, pid, (size_t)n, 0) != n) {
		int err = errno;
		close(*fd);
		*fd = -1;
		return lock_refused(L, path, err, 0);
	}
	return 1;
}

static int lock_close(lua_State *L)
{
	int *fd = (int *)luaL_checkudata(L, 1, LOCK_MT);

	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	return 0;
}

static const luaL_Reg methods[] = {
	{"exec", st_exec},
	{"run", st_run},
	{"close", st_close},
	{NULL, NULL}
};

static const luaL_Reg funcs[] = {
	{"open", st_open},
	{"lock", st_lock},
	{NULL, NULL}
};

int luaopen_nomade_store(lua_State *L)
{
	if (luaL_newmetatable(L, DB_MT)) {
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, st_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, st_close);
		lua_setfield(L, -2, "__close");
	}
	lua_pop(L, 1);
	if (luaL_newmetatable(L, LOCK_MT)) {
		lua_pushcfunction(L, lock_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, lock_close);
		lua_setfield(L, -2, "__close");
		lua_createtable(L, 0, 1);
		lua_pushcfunction(L, lock_close);
		lua_setfield(L, -2, "close");
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
