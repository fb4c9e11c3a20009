/*
 * minmax.c: highest and lowest of the last n values with a monotonic
 * deque: every value enters and leaves once, so an update is O(1)
 * amortized, and the result is one of the inputs, exactly.
 */
#include "ta_int.h"

size_t ta_minmax_size(int n)
{
	return sizeof(ta_minmax) + (n > 0 ? (size_t)n : 0) * sizeof(struct ta_mm_slot);
}

int ta_minmax_init(ta_minmax *s, int n, int want_max)
{
	if (!TA_PERIOD_OK(n))
		return TA_EINVAL;
	s->n = (size_t)n;
	s->count = s->head = s->len = 0;
	s->want_max = want_max;
	return TA_OK;
}

/* does v push the newer x out of the deque's back? */
static int dominated(const ta_minmax *s, double v, double x)
{
	return s->want_max ? v <= x : v >= x;
}

static double minmax_push(ta_minmax *s, double x)
{
	size_t i = s->count++;

	if (s->len > 0 && i >= s->n && s->q[s->head].idx <= i - s->n) {
		if (++s->head == s->n)
			s->head = 0;
		s->len--;
	}
	while (s->len > 0) {
		size_t back = (s->head + s->len - 1) % s->n;
		if (!dominated(s, s->q[back].v, x))
			break;
		s->len--;
	}
	s->q[(s->head + s->len) % s->n] = (struct ta_mm_slot){ i, x };
	s->len++;
	return i + 1 >= s->n ? s->q[s->head].v : TA_NAN;
}

void ta_minmax_run(ta_minmax *s, const double *in, size_t len, double *out)
{
	size_t i;

	for (i = 0; i < len; i++)
		out[i] = minmax_push(s, in[i]);
}
