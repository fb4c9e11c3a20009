/*
 * lib_crypto.c: nomade.crypto, the hashing the runtime needs from
 * OpenSSL: sha256 for the tribunal's prompt cache keys, and HMAC-SHA256
 * for request signing. Both return lowercase hex.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <lauxlib.h>
#include "host.h"

static void push_hex(lua_State *L, const unsigned char *md, unsigned int n)
{
	static const char digits[] = "0123456789abcdef";
	char hex[2 * EVP_MAX_MD_SIZE];
	unsigned int i;

	for (i = 0; i < n; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	lua_pushlstring(L, hex, 2 * n);
}

static int c_sha256(lua_State *L)
{
	size_t len;
	const char *data = luaL_checklstring(L, 1, &len);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL))
		return luaL_error(L, "crypto.sha256: OpenSSL failed");
	push_hex(L, md, n);
	return 1;
}

static int c_hmac_sha256(lua_State *L)
{
	size_t klen, len;
	const char *key = luaL_checklstring(L, 1, &klen);
	const char *data = luaL_checklstring(L, 2, &len);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)data, len, md, &n))
		return luaL_error(L, "crypto.hmac_sha256: OpenSSL failed");
	push_hex(L, md, n);
	return 1;
}

static const luaL_Reg funcs[] = {
	{"sha256", c_sha256},
	{"hmac_sha256", c_hmac_sha256},
	{NULL, NULL}
};

int luaopen_nomade_crypto(lua_State *L)
{
	luaL_newlib(L, funcs);
	return 1;
}
