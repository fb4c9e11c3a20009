/*
 * main.c: the nomade command line. Everything that touches Lua runs
 * inside host_pcall, so a Lua error is reported with file:line and a
 * traceback and turned into an exit code (see usage below and README).
 */
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <lauxlib.h>
#include "host.h"
#include "lib_sched.h"

static void usage(FILE *f)
{
	fputs("usage: nomade COMMAND [ARGS]\n"
	      "\n"
	      "commands:\n"
	      "  help                  this text\n"
	      "  version               versions of nomade and the libraries it uses\n"
	      "  script FILE [ARGS]    run a Lua file in the host, every nomade.* module\n"
	      "                        available; ARGS are in `arg` and `...`\n"
	      "  eval 'CODE'           run Lua code (an expression prints its values)\n"
	      "  run [STRATEGY] --feed replay:FILE [--speed X|max]\n"
	      "                        the runtime: a feed, paper execution, hot reload\n"
	      "  repl [--socket PATH] [-e EXPR]\n"
	      "                        attach to a running runtime (nomade repl --help)\n"
	      "  bybit candles|balance|orders ...\n"
	      "                        the Bybit V5 REST client (nomade bybit --help)\n"
	      "  tribunal ask [STRATEGY] --data FILE [--at TIME] [options]\n"
	      "                        the prompt for a candle, the LLM's raw reply and the verdict\n"
	      "  backtest [STRATEGY] --data FILE [options]\n"
	      "                        a strategy over historical candles (nomade backtest --help)\n"
	      "  audit JOURNAL         replay a run's journal through the same engine step and\n"
	      "                        check every decision, order intent and fill (nomade audit --help)\n"
	      "\n"
	      "exit codes:\n"
	      "  0  success (or what the script returned / passed to os.exit)\n"
	      "  1  the Lua code raised an error, or a script returned false\n"
	      "  2  bad command line\n"
	      "  3  the script could not be read or compiled\n"
	      "  4  the watchdog: a strategy or REPL call stuck in C code (README, Budgets)\n", f);
}

static const char script_usage[] =
	"usage: nomade script FILE [ARGS]\n"
	"  runs the Lua file FILE in the host, every nomade.* module available;\n"
	"  ARGS are in `arg` (arg[0] is FILE) and `...`. The exit code is what\n"
	"  the script returns (nothing or true 0, false 1, an integer itself),\n"
	"  1 when it raises an error, 3 when it cannot be read or compiled.\n";

static const char eval_usage[] =
	"usage: nomade eval 'CODE'\n"
	"  runs the Lua code CODE in the host, every nomade.* module available;\n"
	"  an expression prints its values. Exit 1 when it raises an error, 3\n"
	"  when it does not compile.\n";

/* `nomade CMD --help` (or -h) as its first argument: the usage, exit 0 */
static int asks_help(int argc, char **argv, const char *text)
{
	if (argc < 1 || (strcmp(argv[0], "--help") && strcmp(argv[0], "-h")))
		return 0;
	fputs(text, stdout);
	return 1;
}

/* exit code from what a script returned: nothing/true 0, false 1, n n */
static int exit_code(lua_State *L, int base)
{
	if (lua_gettop(L) <= base || lua_isnil(L, base + 1))
		return EXIT_OK;
	if (lua_isboolean(L, base + 1))
		return lua_toboolean(L, base + 1) ? EXIT_OK : EXIT_ERROR;
	if (lua_isinteger(L, base + 1)) {
		lua_Integer n = lua_tointeger(L, base + 1);
		return n >= 0 && n <= 255 ? (int)n : EXIT_ERROR;
	}
	return EXIT_OK;
}

static int run_script(lua_State *L, int argc, char **argv)
{
	int i, base;

	if (asks_help(argc, argv, script_usage))
		return EXIT_OK;
	if (argc < 1) {
		fprintf(stderr, "nomade script: missing FILE\n%s", script_usage);
		return EXIT_USAGE;
	}
	lua_createtable(L, argc, 1);
	for (i = 0; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i);
	}
	lua_setglobal(L, "arg");
	base = lua_gettop(L);
	if (luaL_loadfilex(L, argv[0], "t") != LUA_OK) {
		host_report(L, "script");
		return EXIT_LOAD;
	}
	for (i = 1; i < argc; i++)
		lua_pushstring(L, argv[i]);
	if (host_pcall(L, argc - 1, LUA_MULTRET) != LUA_OK) {
		host_report(L, argv[0]);
		return EXIT_ERROR;
	}
	return exit_code(L, base);
}

/* a protected call that reports its own failure; 0 or -1 */
static int call(lua_State *L, const char *where, int nargs, int nresults)
{
	if (host_pcall(L, nargs, nresults) == LUA_OK)
		return 0;
	host_report(L, where);
	return -1;
}

/* pushes require(module)[field] */
static int push_field(lua_State *L, const char *module, const char *field)
{
	lua_getglobal(L, "require");
	lua_pushstring(L, module);
	if (call(L, module, 1, 1) != 0)
		return -1;
	lua_getfield(L, -1, field);
	lua_remove(L, -2);
	return 0;
}

/* loads CODE as an expression first (as lua.c does), then as a statement */
static int load_eval(lua_State *L, const char *code)
{
	lua_pushfstring(L, "return %s;", code);
	if (luaL_loadbufferx(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=eval", "t") == LUA_OK) {
		lua_remove(L, -2);
		return 0;
	}
	lua_pop(L, 2);
	if (luaL_loadbufferx(L, code, strlen(code), "=eval", "t") == LUA_OK)
		return 0;
	host_report(L, "eval");
	return -1;
}

static int run_eval(lua_State *L, int argc, char **argv)
{
	int base;

	if (asks_help(argc, argv, eval_usage))
		return EXIT_OK;
	if (argc != 1) {
		fprintf(stderr, "nomade eval: expected exactly one argument, the code\n%s", eval_usage);
		return EXIT_USAGE;
	}
	if (push_field(L, "nomade.pretty", "print") != 0)
		return EXIT_ERROR;
	base = lua_gettop(L);
	if (load_eval(L, argv[0]) != 0)
		return EXIT_LOAD;
	if (call(L, "eval", 0, LUA_MULTRET) != 0)
		return EXIT_ERROR;
	if (call(L, "eval", lua_gettop(L) - base, 0) != 0)
		return EXIT_ERROR;
	return EXIT_OK;
}

/* a command written in Lua: require(module).main(args...) returns the
   code; through nomade.cli.command, which makes its output printable */
static int run_lua_command(lua_State *L, const char *module, int argc, char **argv)
{
	int i;

	if (push_field(L, "nomade.cli", "command") != 0)
		return EXIT_ERROR;
	lua_pushstring(L, module);
	for (i = 0; i < argc; i++)
		lua_pushstring(L, argv[i]);
	if (call(L, module, argc + 1, 1) != 0)
		return EXIT_ERROR;
	return lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : EXIT_ERROR;
}

static int run_version(lua_State *L)
{
	if (push_field(L, "nomade", "version_string") != 0 || call(L, "version", 0, 1) != 0)
		return EXIT_ERROR;
	puts(lua_tostring(L, -1));
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;
	lua_State *L;
	int rc;

	if (cmd == NULL) {
		usage(stderr);
		return EXIT_USAGE;
	}
	/* Series grow by realloc. glibc raises its mmap threshold after a big
	   free, and then grows big blocks on the heap by copying; fixed at
	   1 MB, big arrays stay mmapped and grow by mremap, without a copy. */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	if (!strcmp(cmd, "help") || !strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(cmd, "script") && strcmp(cmd, "eval") && strcmp(cmd, "version")
	    && strcmp(cmd, "--version") && strcmp(cmd, "backtest") && strcmp(cmd, "run")
	    && strcmp(cmd, "repl") && strcmp(cmd, "bybit") && strcmp(cmd, "tribunal")
	    && strcmp(cmd, "audit")) {
		fprintf(stderr, "nomade: unknown command '%s' (see nomade help)\n", cmd);
		return EXIT_USAGE;
	}
	L = host_open();
	if (L == NULL)
		return EXIT_ERROR;
	/* generational: a run's heap is mostly old (the strategy, the series,
	   the dashboard's tree) and a candle's garbage young; an incremental
	   cycle over the whole heap would land, a step at a time, in the
	   middle of a candle's way to its order (p99 900 us -> 320 us) */
	lua_gc(L, LUA_GCGEN, 0, 0);
	lua_pushstring(L, argv[0]);  /* for hints such as "attach: build/nomade repl" */
	lua_setfield(L, LUA_REGISTRYINDEX, "nomade.argv0");
	sched_allow_blocking(L, 1);  /* the blocking forms: a command may wait on its main thread */
	if (!strcmp(cmd, "script"))
		rc = run_script(L, argc - 2, argv + 2);
	else if (!strcmp(cmd, "eval"))
		rc = run_eval(L, argc - 2, argv + 2);
	else if (!strcmp(cmd, "backtest"))
		rc = run_lua_command(L, "nomade.backtest", argc - 2, argv + 2);
	else if (!strcmp(cmd, "run"))
		rc = run_lua_command(L, "nomade.live", argc - 2, argv + 2);
	else if (!strcmp(cmd, "repl"))
		rc = run_lua_command(L, "nomade.repl", argc - 2, argv + 2);
	else if (!strcmp(cmd, "bybit"))
		rc = run_lua_command(L, "nomade.bybit.cli", argc - 2, argv + 2);
	else if (!strcmp(cmd, "tribunal"))
		rc = run_lua_command(L, "nomade.tribunal", argc - 2, argv + 2);
	else if (!strcmp(cmd, "audit"))
		rc = run_lua_command(L, "nomade.audit", argc - 2, argv + 2);
	else
		rc = run_version(L);
	fflush(stdout);
	host_close(L);
	return rc;
}
