/*
 * lib_bybit.c: nomade.bybit.rest's C half (see lua/nomade/bybit/rest.lua): the
 * signatures, over exactly the bytes that are sent.
 *   bybit.sign(secret, timestamp, api_key, recv_window, payload) -> hex
 *     REST: HMAC-SHA256(secret, timestamp .. api_key .. recv_window ..
 *     payload), payload = the raw query string (no '?') or the raw body
 *   bybit.sign_ws(secret, expires) -> hex   (private WebSocket auth:
 *     HMAC-SHA256(secret, "GET/realtime" .. expires))
 *   bybit.sign_order(shield, secret, timestamp, api_key, recv_window,
 *     payload) -> hex, or nil, why: the Integrity Shield's gate on the
 *     exchange's order path. An order the shield's state forbids gets no
 *     signature, so it cannot go out. Whether it is an entry is read
 *     from the payload that is signed, not taken from the caller: only a
 *     body with one "side" and that side "Sell" is an exit (spot, long
 *     only); anything else is judged as an entry, the stricter case.
 * The secret is never kept here: it is used and forgotten.
 */
#include <string.h>
#include <openssl/evp.h>
#include <lauxlib.h>
#include "host.h"
#include "shield.h"

/* HMAC-SHA256 (RFC 2104) over a SHA-256 fetched once: OpenSSL 3's HMAC()
   fetches its algorithm at every call, and an order's signature took 18 us
   (p50, make bench) between a candle's close and its request; 7 us so */
static int hmac_sha256(const char *key, size_t klen, const unsigned char *msg, size_t mlen,
                       unsigned char *md, unsigned int *mdlen)
{
	static EVP_MD *sha;
	static EVP_MD_CTX *ctx;
	unsigned char k[64], pad[64], inner[32];
	unsigned int n = 0;
	size_t i;

	if (!sha && !(sha = EVP_MD_fetch(NULL, "SHA256", NULL)))
		return 0;
	if (!ctx && !(ctx = EVP_MD_CTX_new()))
		return 0;
	memset(k, 0, sizeof k);
	if (klen > sizeof k) {
		if (!EVP_Digest(key, klen, k, &n, sha, NULL))
			return 0;
	} else {
		memcpy(k, key, klen);
	}
	for (i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x36;
	if (!EVP_DigestInit_ex2(ctx, sha, NULL) || !EVP_DigestUpdate(ctx, pad, 64) || !EVP_DigestUpdate(ctx, msg, mlen)
	    || !EVP_DigestFinal_ex(ctx, inner, &n))
		return 0;
	for (i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x5c;
	return EVP_DigestInit_ex2(ctx, sha, NULL) && EVP_DigestUpdate(ctx, pad, 64) && EVP_DigestUpdate(ctx, inner, 32)
	       && EVP_DigestFinal_ex(ctx, md, mdlen);
}

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
	if (!hmac_sha256(secret, slen, (const unsigned char *)lua_tostring(L, -1), lua_rawlen(L, -1), md, &mdlen))
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

/* is the order body an exit? One "side" key, valued "Sell". A second
   "side" (a duplicated key, or one smuggled into a string, where its
   quotes would be escaped and so not match) makes it an entry. */
static int is_exit(const char *body, size_t len)
{
	static const char key[] = "\"side\":";
	const char *end = body + len, *p = body, *found = NULL;

	while ((p = (const char *)memchr(p, '"', (size_t)(end - p))) != NULL) {
		if ((size_t)(end - p) >= sizeof key - 1 && memcmp(p, key, sizeof key - 1) == 0) {
			if (found)
				return 0;
			found = p + sizeof key - 1;
		}
		p++;
	}
	return found && (size_t)(end - found) >= 6 && memcmp(found, "\"Sell\"", 6) == 0;
}

static int b_sign_order(lua_State *L)
{
	const shield *sh = (const shield *)luaL_checkudata(L, 1, SHIELD_MT);
	size_t len;
	const char *payload = luaL_checklstring(L, 6, &len);
	int entry = !is_exit(payload, len);

	if (!shield_allows(sh->state, entry)) {
		lua_pushnil(L);
		lua_pushfstring(L, "refused by the Integrity Shield (%s: %s)", shield_state_name(sh->state),
		                entry ? "no new entries" : "no orders at all");
		return 2;
	}
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
