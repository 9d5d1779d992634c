/* test_qmp.c: the machine interface's portable half (codec/qmp.c): a
 * request line parsed and checked (what jsmn leaves loose refused too),
 * its arguments read by name and type with QMP's error texts, and the
 * JSON writer's text, which must itself parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "qmp.h"

static struct qmp_req r;
static char err[256];

static int parse(const char *s)
{
	err[0] = 0;
	return qmp_parse(s, strlen(s), &r, err, sizeof(err));
}

static void test_good_requests(void **st)
{
	(void)st;
	assert_int_equal(parse("{\"execute\": \"query-status\"}"), 0);
	assert_string_equal(r.execute, "query-status");
	assert_int_equal(r.args, -1);
	assert_int_equal(r.id, -1);

	assert_int_equal(parse("  {\"id\": {\"a\": [1, 2]}, \"arguments\": {\"uri\": \"tcp:10.0.0.2:4444\"}, "
			       "\"execute\": \"migrate\"}\r\n"),
			 0);
	assert_string_equal(r.execute, "migrate");
	assert_int_equal(r.tok[r.id].type, QMP_T_OBJECT);
	assert_int_equal(r.tok[r.args].type, QMP_T_OBJECT);
	char uri[64];
	assert_int_equal(qmp_arg_str(&r, "uri", uri, sizeof(uri), err, sizeof(err)), 1);
	assert_string_equal(uri, "tcp:10.0.0.2:4444");
}

/* Each malformed line is refused with this text (a prefix of err). */
static const struct {
	const char *line, *want;
} bad[] = {
	{ "", "JSON parse error: empty request" },
	{ "   ", "JSON parse error: empty request" },
	{ "{", "JSON parse error" },
	{ "{\"execute\": \"x\"", "JSON parse error" },
	{ "[\"execute\"]", "QMP input must be a JSON object" },
	{ "\"execute\"", "QMP input must be a JSON object" },
	{ "{\"execute\": \"x\"} {\"execute\": \"y\"}", "JSON parse error" },
	{ "{\"execute\": \"x\"}  1", "JSON parse error" },
	{ "{\"execute\": \"x\"} junk", "JSON parse error" },
	{ "{\"execute\": 1}", "QMP input member 'execute' must be a string" },
	{ "{\"execute\": \"x\", \"arguments\": []}", "QMP input member 'arguments' must be an object" },
	{ "{\"execute\": \"x\", \"bogus\": 1}", "QMP input member 'bogus' is unexpected" },
	{ "{\"arguments\": {}}", "QMP input lacks member 'execute'" },
	{ "{\"execute\": \"\"}", "QMP input member 'execute' is not a command name" },
	{ "{\"execute\": \"x\", \"id\": tru}", "JSON parse error" },
	{ "{\"execute\": \"x\", \"id\": 01}", "JSON parse error" },
	{ "{\"execute\": \"x\", \"id\": 1.}", "JSON parse error" },
	{ "{\"execute\": \"x\", \"id\": -}", "JSON parse error" },
	{ "{\"execute\": \"x\", \"id\": 1e}", "JSON parse error" },
	{ "{\"execute\": \"a\tb\"}", "JSON parse error" },
	{ "{\"execute\": \"x\", \"id\": \"\\q\"}", "JSON parse error" },
	{ "{\"execute\" \"x\"}", "JSON parse error" },
};

static void test_malformed_refused(void **st)
{
	(void)st;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i].line);
		if (rc != -1 || strncmp(err, bad[i].want, strlen(bad[i].want)) != 0)
			fail_msg("line %zu '%s': rc %d, err '%s', want '%s'", i, bad[i].line, rc, err, bad[i].want);
	}
	/* numbers JSON allows */
	assert_int_equal(parse("{\"execute\": \"x\", \"id\": -0.5e+3}"), 0);
	/* the id is known even when the request is bad, so the answer can echo it */
	assert_int_equal(parse("{\"id\": 7, \"execute\": 3}"), -1);
	assert_true(r.id > 0);
	assert_memory_equal(r.js + r.tok[r.id].start, "7", 1);
}

static void test_too_many_tokens(void **st)
{
	(void)st;
	char line[QMP_LINE_MAX];
	size_t k = (size_t)snprintf(line, sizeof(line), "{\"execute\": \"x\", \"id\": [");
	for (int i = 0; i < 200; i++)
		k += (size_t)snprintf(line + k, sizeof(line) - k, "%s1", i ? "," : "");
	snprintf(line + k, sizeof(line) - k, "]}");
	assert_int_equal(parse(line), -1);
	assert_string_equal(err, "JSON parse error: more than 128 tokens");
}

static void test_arguments_by_type(void **st)
{
	(void)st;
	assert_int_equal(parse("{\"execute\": \"x\", \"arguments\": {\"n\": 18446744073709551615, \"big\": "
			       "18446744073709551616, \"neg\": -1, \"frac\": 1.5, \"s\": \"a\\\"b\\\\c\\n\", \"b\": true, "
			       "\"f\": false, \"u\": \"\\u0041\", \"o\": {\"n\": 1}}}"),
			 0);
	uint64_t v = 0;
	bool b = false;
	char s[16];
	assert_int_equal(qmp_arg_u64(&r, "n", &v, err, sizeof(err)), 1);
	assert_true(v == UINT64_MAX);
	assert_int_equal(qmp_arg_u64(&r, "big", &v, err, sizeof(err)), -1);
	assert_string_equal(err, "Parameter 'big' is out of range");
	assert_int_equal(qmp_arg_u64(&r, "neg", &v, err, sizeof(err)), -1);
	assert_string_equal(err, "Invalid parameter type for 'neg', expected: integer");
	assert_int_equal(qmp_arg_u64(&r, "frac", &v, err, sizeof(err)), -1);
	assert_int_equal(qmp_arg_u64(&r, "s", &v, err, sizeof(err)), -1);
	assert_int_equal(qmp_arg_u64(&r, "absent", &v, err, sizeof(err)), 0);
	assert_int_equal(qmp_arg_str(&r, "s", s, sizeof(s), err, sizeof(err)), 1);
	assert_string_equal(s, "a\"b\\c\n");
	assert_int_equal(qmp_arg_str(&r, "s", s, 4, err, sizeof(err)), -1);
	assert_string_equal(err, "Parameter 's' is too long");
	assert_int_equal(qmp_arg_str(&r, "u", s, sizeof(s), err, sizeof(err)), -1);
	assert_int_equal(qmp_arg_str(&r, "n", s, sizeof(s), err, sizeof(err)), -1);
	assert_string_equal(err, "Invalid parameter type for 'n', expected: string");
	assert_int_equal(qmp_arg_bool(&r, "b", &b, err, sizeof(err)), 1);
	assert_true(b);
	assert_int_equal(qmp_arg_bool(&r, "f", &b, err, sizeof(err)), 1);
	assert_false(b);
	assert_int_equal(qmp_arg_bool(&r, "s", &b, err, sizeof(err)), -1);
	assert_string_equal(err, "Invalid parameter type for 's', expected: bool");
	/* a nested object's members are not the request's arguments */
	assert_int_equal(qmp_arg_tok(&r, "o") > 0, 1);
	char name[QMP_NAME_MAX];
	int count = 0;
	while (qmp_arg_name(&r, count, name, sizeof(name)))
		count++;
	assert_int_equal(count, 9);
	static const char *const some[] = { "n", "big", NULL };
	assert_int_equal(qmp_args_only(&r, some, err, sizeof(err)), -1);
	assert_string_equal(err, "Parameter 'neg' is unexpected");
}

static void test_writer(void **st)
{
	(void)st;
	char buf[512];
	struct jw w;
	jw_init(&w, buf, sizeof(buf));
	jw_obj(&w, NULL);
	jw_obj(&w, "return");
	jw_str(&w, "s", "q\"b\\s\n\x01}");
	jw_u64(&w, "big", UINT64_MAX);
	jw_i64(&w, "neg", INT64_MIN);
	jw_bool(&w, "t", true);
	jw_arr(&w, "a");
	jw_u64(&w, NULL, 0);
	jw_obj(&w, NULL);
	jw_end(&w);
	jw_arr(&w, NULL);
	jw_end(&w);
	jw_end(&w);
	jw_end(&w);
	jw_raw(&w, "id", "[1, 2]", 6);
	jw_end(&w);
	assert_false(w.overflow);
	assert_string_equal(jw_text(&w),
			    "{\"return\": {\"s\": \"q\\\"b\\\\s\\n\\u0001}\", \"big\": 18446744073709551615, "
			    "\"neg\": -9223372036854775808, \"t\": true, \"a\": [0, {}, []]}, \"id\": [1, 2]}");
	/* and it parses back */
	char line[600];
	snprintf(line, sizeof(line), "{\"execute\": \"x\", \"arguments\": %s}", jw_text(&w));
	assert_int_equal(parse(line), 0);

	/* out of room: flagged, the text cut but NUL-ended */
	char small[16];
	jw_init(&w, small, sizeof(small));
	jw_obj(&w, NULL);
	jw_str(&w, "key", "a value longer than the buffer");
	jw_end(&w);
	assert_true(w.overflow);
	assert_true(strlen(jw_text(&w)) < sizeof(small));
	/* closing what is not open is a caller's bug, flagged */
	jw_init(&w, buf, sizeof(buf));
	jw_end(&w);
	assert_true(w.overflow);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_requests),
		cmocka_unit_test(test_malformed_refused),
		cmocka_unit_test(test_too_many_tokens),
		cmocka_unit_test(test_arguments_by_type),
		cmocka_unit_test(test_writer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
