/*
 * verdict.h: the tribunal's answer, parsed strictly. An LLM's reply must be
 * exactly one JSON object {"signal": "BUY"|"WAIT", "score": 0..100 integer,
 * "reasoning": string}: no other key, no key twice, nothing around it but
 * white space. Plain C, no allocation, so it is fuzzed on its own.
 */
#ifndef NOMADE_VERDICT_H
#define NOMADE_VERDICT_H

#include <stddef.h>

#define VERDICT_REASONING_MAX 8000

enum { VERDICT_OK, VERDICT_NOT_JSON, VERDICT_SCHEMA };

struct verdict {
	int buy;     /* 1: BUY, 0: WAIT */
	int score;   /* 0..100 */
	size_t reasoning_len;
	char reasoning[VERDICT_REASONING_MAX + 1];  /* UTF-8, NUL-terminated */
};

/* VERDICT_OK and *v filled, or a failure with why (a line for people) */
int verdict_parse(const char *text, size_t len, struct verdict *v, char *why, size_t whylen);

#endif
