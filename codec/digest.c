/* digest.c: XXH3-128 (digest.h), dispatched to one of two builds of
 * xxHash's code: its vector inner loop (SSE2 on x86-64) or its scalar
 * one. Both give the same digests; a digest_state remembers which one
 * started it. */
#include "digest.h"
#include "digest_priv.h"

struct digest_ops {
	const char *name;
	void (*init)(struct digest_state *st);
	void (*update)(struct digest_state *st, const void *buf, size_t len);
	struct digest128 (*final)(const struct digest_state *st);
	struct digest128 (*buf)(const void *buf, size_t len);
};

static const struct digest_ops ops[DIGEST_IMPL_COUNT] = {
	[DIGEST_IMPL_VECTOR] = { "vector", digest_vector_init, digest_vector_update, digest_vector_final,
				 digest_vector_buf },
	[DIGEST_IMPL_SCALAR] = { "scalar", digest_scalar_init, digest_scalar_update, digest_scalar_final,
				 digest_scalar_buf },
};

static enum digest_impl current = DIGEST_IMPL_VECTOR;

int digest_set_impl(enum digest_impl impl)
{
	if ((unsigned)impl >= DIGEST_IMPL_COUNT)
		return -1;
	current = impl;
	return 0;
}

enum digest_impl digest_get_impl(void)
{
	return current;
}

const char *digest_impl_name(enum digest_impl impl)
{
	return (unsigned)impl < DIGEST_IMPL_COUNT ? ops[impl].name : "?";
}

void digest_init(struct digest_state *st)
{
	st->impl = (unsigned char)current;
	ops[current].init(st);
}

void digest_update(struct digest_state *st, const void *buf, size_t len)
{
	ops[st->impl].update(st, buf, len);
}

struct digest128 digest_final(const struct digest_state *st)
{
	return ops[st->impl].final(st);
}

struct digest128 digest_buf(const void *buf, size_t len)
{
	return ops[current].buf(buf, len);
}

struct digest128 digest_buf_impl(enum digest_impl impl, const void *buf, size_t len)
{
	return ops[(unsigned)impl < DIGEST_IMPL_COUNT ? impl : DIGEST_IMPL_VECTOR].buf(buf, len);
}
