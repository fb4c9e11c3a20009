/*
 * lib_bybit.c: nomade.bybit's C half (see lua/nomade/bybit.lua): the
 * signatures, over exactly the bytes that are sent.
 *   bybit.sign(secret, timestamp, api_key, recv_window, payload) -> hex
 *     REST: HMAC-SHA256(secret, timestamp .. api_key .. recv_window ..
 *     payload), payload = the raw query string (no '?') or the raw body
 *   bybit.sign_ws(secret, expires) -> hex   (private WebSocket auth:
 *     HMAC-SHA256(secret, "GET/realtime" .. expires))
 *   bybit.sign_order(shield, entry, secret, timestamp, api_key, recv_window,
 *     payload) -> hex, or nil, why: the Integrity Shield's gate on the
 *     exchange's order path. An order the shield's state forbids (entry:
 *     it opens a position) gets no signature, so it cannot go out.
 * The secret is never kept here: it is used and forgotten.
 */
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <lauxlib.h>
#include "host.h"
#include "shield.h"

/* HMAC-SHA256 of the concatenation of parts, as lowercase hex */
static int push_hmac(lua_State *L, const char *secret, size_t slen, const char **parts,
                     const size_t *lens, int n)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	char hex[2 * EVP_MAX_MD_SIZE];
	luaL_Buffer b;
	int k;

	luaL_buffinit(L, &b);  /* the message, in a Lua buffer: no C allocation to leak */
	for (k = 0; k < n; k++)
		luaL_addlstring(&b, parts[k], lens[k]);
	luaL_pushresult(&b);
	if (!HMAC(EVP_sha256(), secret, (int)slen, (const unsigned char *)lua_tostring(L, -1),
	          lua_rawlen(L, -1), md, &mdlen))
		return luaL_error(L, "bybit.sign: OpenSSL HMAC failed");
	lua_pop(L, 1);
	for (i = 0; i < mdlen; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	lua_pushlstring(L, hex, 2 * mdlen);
	return 1;
}

static const char *check_secret(lua_State *L, size_t *len)
{
	const char *s = luaL_checklstring(L, 1, len);
	if (*len == 0)
		luaL_argerror(L, 1, "empty secret");
	return s;
}

static int b_sign(lua_State *L)
{
	size_t slen, lens[4];
	const char *secret = check_secret(L, &slen), *parts[4];
	int k;

	for (k = 0; k < 4; k++)
		parts[k] = luaL_checklstring(L, k + 2, &lens[k]);
	return push_hmac(L, secret, slen, parts, lens, 4);
}

static int b_sign_ws(lua_State *L)
{
	size_t slen, lens[2];
	const char *secret = check_secret(L, &slen), *parts[2];

	parts[0] = "GET/realtime", lens[0] = 12;
	parts[1] = luaL_checklstring(L, 2, &lens[1]);
	return push_hmac(L, secret, slen, parts, lens, 2);
}

static int b_sign_order(lua_State *L)
{
	const shield *sh = (const shield *)luaL_checkudata(L, 1, SHIELD_MT);

	luaL_checktype(L, 2, LUA_TBOOLEAN);
	if (!shield_allows(sh->state, lua_toboolean(L, 2))) {
		lua_pushnil(L);
		lua_pushfstring(L, "refused by the Integrity Shield (%s: %s)", shield_state_name(sh->state),
		                lua_toboolean(L, 2) ? "no new entries" : "no orders at all");
		return 2;
	}
	lua_remove(L, 1);
	lua_remove(L, 1);
	return b_sign(L);
}

static const luaL_Reg funcs[] = {
	{"sign", b_sign},
	{"sign_order", b_sign_order},
	{"sign_ws", b_sign_ws},
	{NULL, NULL}
};

int luaopen_nomade_bybit_core(lua_State *L)
{
	luaL_newlib(L, funcs);
	return 1;
}
