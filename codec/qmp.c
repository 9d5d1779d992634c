/* qmp.c: a QMP request line parsed and checked (include/qmp.h), and the
 * JSON writer of the answers. jsmn (Debian's libjsmn-dev, header only)
 * tokenizes; what jsmn leaves loose is checked here: primitives must be
 * true, false, null or a JSON number, strings may hold only JSON's
 * escapes, and the line must be exactly one object. */
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#include "qmp.h"

_Static_assert(sizeof(struct qmp_tok) == sizeof(jsmntok_t), "qmp_tok mirrors jsmntok_t");
_Static_assert((int)QMP_T_OBJECT == (int)JSMN_OBJECT && (int)QMP_T_ARRAY == (int)JSMN_ARRAY &&
		       (int)QMP_T_STRING == (int)JSMN_STRING && (int)QMP_T_PRIMITIVE == (int)JSMN_PRIMITIVE,
	       "qmp_tok types are jsmn's");

static void say(char *err, size_t n, const char *a, const char *b, const char *c)
{
	size_t k = 0;
	for (const char *p[3] = { a, b, c }, **q = p; q < p + 3; q++)
		for (const char *s = *q; s && *s && k + 1 < n; s++)
			err[k++] = *s;
	if (n)
		err[k] = 0;
}

static bool is_number(const char *s, int n)
{
	int i = 0;
	if (i < n && s[i] == '-')
		i++;
	if (i >= n || s[i] < '0' || s[i] > '9')
		return false;
	if (s[i] == '0')
		i++;
	else
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	if (i < n && s[i] == '.') {
		if (++i >= n || s[i] < '0' || s[i] > '9')
			return false;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		if (++i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || s[i] < '0' || s[i] > '9')
			return false;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	return i == n;
}

static bool tok_is(const char *js, const struct qmp_tok *t, const char *s)
{
	size_t n = strlen(s);
	return (size_t)(t->end - t->start) == n && memcmp(js + t->start, s, n) == 0;
}

/* Every primitive a literal or a number; every string free of control
 * characters (jsmn checks the escapes). */
static bool tokens_valid(const char *js, const struct qmp_tok *t, int n)
{
	for (int i = 0; i < n; i++) {
		if (t[i].type == QMP_T_PRIMITIVE) {
			if (!tok_is(js, &t[i], "true") && !tok_is(js, &t[i], "false") && !tok_is(js, &t[i], "null") &&
			    !is_number(js + t[i].start, t[i].end - t[i].start))
				return false;
		} else if (t[i].type == QMP_T_STRING) {
			for (int k = t[i].start; k < t[i].end; k++)
				if ((unsigned char)js[k] < 0x20)
					return false;
		}
	}
	return true;
}

/* The token after t and everything inside it. */
static int skip(const struct qmp_tok *t, int ntok, int i)
{
	int end = i + 1;
	for (int left = t[i].size; left > 0 && end < ntok; left--) {
		if (t[i].type == QMP_T_OBJECT)
			end++; /* the key; then its value */
		end = skip(t, ntok, end);
	}
	return end;
}

/* The shape jsmn does not enforce: an object's members are a string key
 * (jsmn gives a key a size of 1: it saw the colon) and a value; a value
 * is never a key. Returns the token after i's value, or -1. */
static int check_shape(const struct qmp_tok *t, int n, int i)
{
	if (i >= n)
		return -1;
	int j = i + 1;
	switch (t[i].type) {
	case QMP_T_OBJECT:
		for (int m = 0; m < t[i].size; m++) {
			if (j >= n || t[j].type != QMP_T_STRING || t[j].size != 1)
				return -1;
			if ((j = check_shape(t, n, j + 1)) < 0)
				return -1;
		}
		return j;
	case QMP_T_ARRAY:
		for (int m = 0; m < t[i].size; m++)
			if ((j = check_shape(t, n, j)) < 0)
				return -1;
		return j;
	case QMP_T_STRING:
	case QMP_T_PRIMITIVE:
		return t[i].size == 0 ? j : -1;
	}
	return -1;
}

static bool all_space(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

int qmp_parse(const char *line, size_t len, struct qmp_req *r, char *err, size_t n)
{
	memset(r, 0, sizeof(*r));
	r->js = line;
	r->args = r->id = -1;
	jsmn_parser p;
	jsmn_init(&p);
	/* jsmn's own type, copied over: reading it through struct qmp_tok in
	 * place would break C's aliasing rules (and did, at -O2). */
	jsmntok_t jt[QMP_TOKENS];
	int k = jsmn_parse(&p, line, len, jt, QMP_TOKENS);
	if (k > 0)
		memcpy(r->tok, jt, (size_t)k * sizeof(jt[0]));
	if (k == JSMN_ERROR_NOMEM) {
		say(err, n, "JSON parse error: more than 128 tokens", "", "");
		return -1;
	}
	if (k <= 0 || !tokens_valid(line, r->tok, k) || check_shape(r->tok, k, 0) != k) {
		say(err, n, k == 0 ? "JSON parse error: empty request" : "JSON parse error", "", "");
		return -1;
	}
	r->ntok = k;
	if (r->tok[0].type != QMP_T_OBJECT) {
		say(err, n, "QMP input must be a JSON object", "", "");
		return -1;
	}
	if (skip(r->tok, k, 0) != k || !all_space(line + r->tok[0].end, len - (size_t)r->tok[0].end) ||
	    !all_space(line, (size_t)r->tok[0].start)) {
		say(err, n, "JSON parse error: one object a line", "", "");
		return -1;
	}
	int exec = -1;
	for (int i = 1, m = 0; m < r->tok[0].size; m++) {
		const struct qmp_tok *key = &r->tok[i];
		if (tok_is(line, key, "id"))
			r->id = i + 1;
		i = skip(r->tok, k, i + 1);
	}
	for (int i = 1, m = 0; m < r->tok[0].size; m++) {
		const struct qmp_tok *key = &r->tok[i], *val = &r->tok[i + 1];
		if (tok_is(line, key, "execute")) {
			if (val->type != QMP_T_STRING) {
				say(err, n, "QMP input member 'execute' must be a string", "", "");
				return -1;
			}
			exec = i + 1;
		} else if (tok_is(line, key, "arguments")) {
			if (val->type != QMP_T_OBJECT) {
				say(err, n, "QMP input member 'arguments' must be an object", "", "");
				return -1;
			}
			r->args = i + 1;
		} else if (!tok_is(line, key, "id")) {
			char name[QMP_NAME_MAX];
			int kl = key->end - key->start < QMP_NAME_MAX - 1 ? key->end - key->start : QMP_NAME_MAX - 1;
			memcpy(name, line + key->start, (size_t)kl);
			name[kl] = 0;
			say(err, n, "QMP input member '", name, "' is unexpected");
			return -1;
		}
		i = skip(r->tok, k, i + 1);
	}
	if (exec < 0) {
		say(err, n, "QMP input lacks member 'execute'", "", "");
		return -1;
	}
	int el = r->tok[exec].end - r->tok[exec].start;
	if (el <= 0 || el >= QMP_NAME_MAX) {
		say(err, n, "QMP input member 'execute' is not a command name", "", "");
		return -1;
	}
	memcpy(r->execute, line + r->tok[exec].start, (size_t)el);
	r->execute[el] = 0;
	return 0;
}

int qmp_tok_next(const struct qmp_req *r, int i)
{
	return i >= 0 && i < r->ntok ? skip(r->tok, r->ntok, i) : r->ntok;
}

int qmp_arg_tok(const struct qmp_req *r, const char *key)
{
	if (r->args < 0)
		return -1;
	for (int i = r->args + 1, m = 0; m < r->tok[r->args].size; m++) {
		if (tok_is(r->js, &r->tok[i], key))
			return i + 1;
		i = skip(r->tok, r->ntok, i + 1);
	}
	return -1;
}

bool qmp_arg_name(const struct qmp_req *r, int idx, char *out, size_t outn)
{
	if (r->args < 0 || idx < 0 || idx >= r->tok[r->args].size || !outn)
		return false;
	int i = r->args + 1;
	for (int m = 0; m < idx; m++)
		i = skip(r->tok, r->ntok, i + 1);
	size_t kl = (size_t)(r->tok[i].end - r->tok[i].start);
	kl = kl < outn - 1 ? kl : outn - 1;
	memcpy(out, r->js + r->tok[i].start, kl);
	out[kl] = 0;
	return true;
}

int qmp_args_only(const struct qmp_req *r, const char *const *allowed, char *err, size_t n)
{
	char name[QMP_NAME_MAX];
	for (int i = 0; qmp_arg_name(r, i, name, sizeof(name)); i++) {
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = strcmp(*a, name) == 0;
		if (!ok) {
			say(err, n, "Parameter '", name, "' is unexpected");
			return -1;
		}
	}
	return 0;
}

static int wrong(char *err, size_t n, const char *key, const char *type)
{
	char t[40] = "Invalid parameter type for '";
	say(err, n, t, key, "', expected: ");
	size_t k = strlen(err);
	say(err + k, n > k ? n - k : 0, type, "", "");
	return -1;
}

int qmp_arg_str(const struct qmp_req *r, const char *key, char *out, size_t outn, char *err, size_t n)
{
	int t = qmp_arg_tok(r, key);
	if (t < 0)
		return 0;
	if (r->tok[t].type != QMP_T_STRING)
		return wrong(err, n, key, "string");
	/* JSON escapes are decoded for the few a command line needs; any
	 * other (\u) is refused rather than passed on undecoded. */
	size_t k = 0;
	for (int i = r->tok[t].start; i < r->tok[t].end; i++) {
		char c = r->js[i];
		if (c == '\\') {
			char e = r->js[++i];
			c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b' : e == 'f' ? '\f' : e;
			if (e == 'u') {
				say(err, n, "Parameter '", key, "': \\u escapes are not supported");
				return -1;
			}
		}
		if (k + 1 >= outn) {
			say(err, n, "Parameter '", key, "' is too long");
			return -1;
		}
		out[k++] = c;
	}
	out[k] = 0;
	return 1;
}

int qmp_arg_u64(const struct qmp_req *r, const char *key, uint64_t *v, char *err, size_t n)
{
	int t = qmp_arg_tok(r, key);
	if (t < 0)
		return 0;
	const char *s = r->js + r->tok[t].start;
	int len = r->tok[t].end - r->tok[t].start;
	if (r->tok[t].type != QMP_T_PRIMITIVE || len < 1 || len > 20 || s[0] < '0' || s[0] > '9')
		return wrong(err, n, key, "integer");
	uint64_t x = 0;
	for (int i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return wrong(err, n, key, "integer");
		uint64_t d = (uint64_t)(s[i] - '0');
		if (x > (UINT64_MAX - d) / 10) {
			say(err, n, "Parameter '", key, "' is out of range");
			return -1;
		}
		x = x * 10 + d;
	}
	*v = x;
	return 1;
}

int qmp_arg_bool(const struct qmp_req *r, const char *key, bool *v, char *err, size_t n)
{
	int t = qmp_arg_tok(r, key);
	if (t < 0)
		return 0;
	if (tok_is(r->js, &r->tok[t], "true") && r->tok[t].type == QMP_T_PRIMITIVE)
		*v = true;
	else if (tok_is(r->js, &r->tok[t], "false") && r->tok[t].type == QMP_T_PRIMITIVE)
		*v = false;
	else
		return wrong(err, n, key, "bool");
	return 1;
}

/* ---- the writer ---- */

void jw_init(struct jw *w, char *buf, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap;
	w->first[0] = true;
	if (cap)
		buf[0] = 0;
}

static void put(struct jw *w, const char *s, size_t n)
{
	if (w->len + n + 1 > w->cap) {
		w->overflow = true;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = 0;
}

static void put_str(struct jw *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	put(w, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			put(w, e, 2);
		} else if (c == '\n') {
			put(w, "\\n", 2);
		} else if (c == '\r') {
			put(w, "\\r", 2);
		} else if (c == '\t') {
			put(w, "\\t", 2);
		} else if (c < 0x20 || c >= 0x7f) {
			char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			put(w, e, 6);
		} else {
			put(w, (const char *)&c, 1);
		}
	}
	put(w, "\"", 1);
}

static void member(struct jw *w, const char *key)
{
	if (!w->first[w->depth])
		put(w, ", ", 2);
	w->first[w->depth] = false;
	if (key) {
		put_str(w, key, strlen(key));
		put(w, ": ", 2);
	}
}

static void open_nest(struct jw *w, const char *key, char brace)
{
	member(w, key);
	put(w, &brace, 1);
	if (w->depth + 1 >= JW_DEPTH) {
		w->overflow = true;
		return;
	}
	w->first[++w->depth] = true;
	w->closer[w->depth] = brace == '{' ? '}' : ']';
}

void jw_obj(struct jw *w, const char *key)
{
	open_nest(w, key, '{');
}

void jw_arr(struct jw *w, const char *key)
{
	open_nest(w, key, '[');
}

void jw_end(struct jw *w)
{
	if (w->depth == 0) {
		w->overflow = true; /* nothing open: a caller's bug, shown as a cut text */
		return;
	}
	put(w, &w->closer[w->depth], 1);
	w->depth--;
}

void jw_strn(struct jw *w, const char *key, const char *s, size_t n)
{
	member(w, key);
	put_str(w, s, n);
}

void jw_str(struct jw *w, const char *key, const char *s)
{
	jw_strn(w, key, s, strlen(s));
}

void jw_u64(struct jw *w, const char *key, uint64_t v)
{
	char b[24];
	int i = (int)sizeof(b);
	do
		b[--i] = (char)('0' + v % 10);
	while ((v /= 10) && i > 0);
	member(w, key);
	put(w, b + i, sizeof(b) - (size_t)i);
}

void jw_i64(struct jw *w, const char *key, int64_t v)
{
	if (v >= 0)
		return jw_u64(w, key, (uint64_t)v);
	member(w, key);
	put(w, "-", 1);
	w->first[w->depth] = true; /* the digits follow without a comma */
	jw_u64(w, NULL, (uint64_t)(-(v + 1)) + 1);
}

void jw_bool(struct jw *w, const char *key, bool v)
{
	member(w, key);
	put(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_raw(struct jw *w, const char *key, const char *json, size_t n)
{
	member(w, key);
	put(w, json, n);
}

const char *jw_text(struct jw *w)
{
	return w->cap ? w->buf : "";
}
