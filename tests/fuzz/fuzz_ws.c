/*
 * fuzz_ws.c: libFuzzer target for what a WebSocket client reads from the
 * server: the opening handshake's answer (ws_check_answer in ws.c) and the
 * frames after it, read by wslay through callbacks shaped like lib_ws.c's.
 * The first byte picks which. An accepted answer must be a head ending in
 * a blank line and no longer than what came; the frame reader must never
 * hand over a message over its size limit, and never crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>
#include "ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MESSAGE 4096

struct feed {
	const uint8_t *p;
	size_t left;
	int messages;
};

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	struct feed *f = (struct feed *)user;
	size_t n = len < f->left ? len : f->left;

	(void)flags;
	if (n == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (n > 7)  /* short reads, as a socket gives them */
		n = 1 + (size_t)(f->p[0] % 7);
	memcpy(buf, f->p, n);
	f->p += n, f->left -= n;
	return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *d, size_t len, int flags, void *user)
{
	(void)ctx, (void)d, (void)flags, (void)user;
	return (ssize_t)len;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
	(void)ctx, (void)user;
	memset(buf, 0x5A, len);
	return 0;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	(void)ctx;
	if ((arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) && arg->msg_length > MAX_MESSAGE) {
		fprintf(stderr, "fuzz_ws: a message of %zu bytes passed the %d limit\n", arg->msg_length, MAX_MESSAGE);
		abort();
	}
	((struct feed *)user)->messages++;
}

static void frames(const uint8_t *data, size_t size)
{
	struct wslay_event_callbacks cbs = {recv_cb, send_cb, genmask_cb, NULL, NULL, NULL, msg_cb};
	struct feed f = {data, size, 0};
	wslay_event_context_ptr ctx;
	int rounds = 0;

	if (wslay_event_context_client_init(&ctx, &cbs, &f) != 0)
		abort();
	wslay_event_config_set_max_recv_msg_length(ctx, MAX_MESSAGE);
	while (f.left > 0 && wslay_event_want_read(ctx) && rounds++ < 100000) {
		if (wslay_event_recv(ctx) != 0)
			break;
		if (wslay_event_want_write(ctx))
			wslay_event_send(ctx);
	}
	wslay_event_context_free(ctx);
}

static void answer(const uint8_t *data, size_t size)
{
	static const char accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";  /* RFC 6455's example */
	char why[160];
	int head = ws_check_answer((const char *)data, size, accept, why, sizeof why);

	if (head > 0 && ((size_t)head > size || head < 4 || memcmp(data + head - 4, "\r\n\r\n", 4) != 0)) {
		fprintf(stderr, "fuzz_ws: an accepted head of %d bytes that is not one\n", head);
		abort();
	}
	if (head < 0 && why[0] == '\0') {
		fprintf(stderr, "fuzz_ws: a refusal without a reason\n");
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		frames(data + 1, size - 1);
	else
		answer(data + 1, size - 1);
	return 0;
}
