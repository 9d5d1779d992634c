/* qmp.h: the machine interface's portable half (codec/qmp.c): one request
 * line, {"execute": NAME, "arguments": {...}, "id": ANY}, parsed with jsmn
 * (Debian's libjsmn-dev) and checked, its arguments read by name and type;
 * and a JSON writer for the answers and events. The kernel's half
 * (kernel/qmp_cmds.c) runs the commands; tests/fuzz/fuzz_qmp_line.c feeds
 * this one anything.
 *
 * QMP's shapes (QEMU's docs/interop/qmp-spec): an answer is
 * {"return": ...} or {"error": {"class": ..., "desc": ...}}, with the
 * request's "id" echoed as it came. */
#ifndef FERRY_QMP_H
#define FERRY_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QMP_LINE_MAX 4096 /* bytes of a request line */
#define QMP_TOKENS 128    /* JSON tokens of a request */
#define QMP_NAME_MAX 48   /* a command's or an argument's name */

/* jsmn's token, as it is laid out (jsmn.h stays inside codec/qmp.c). */
struct qmp_tok {
	int type; /* QMP_T_* */
	int start, end, size;
};
enum { QMP_T_UNDEFINED = 0, QMP_T_OBJECT = 1, QMP_T_ARRAY = 2, QMP_T_STRING = 3, QMP_T_PRIMITIVE = 4 };

struct qmp_req {
	const char *js;           /* the line (not copied: keep it while the request is used) */
	struct qmp_tok tok[QMP_TOKENS];
	int ntok;
	char execute[QMP_NAME_MAX];
	int args;                 /* token of "arguments" (an object), -1: none */
	int id;                   /* token of "id" (any JSON), -1: none */
};

/* Parse one line. Returns 0, or -1 with a QMP error description in err
 * (malformed JSON, not an object, no or a non-string "execute", an unknown
 * key, "arguments" not an object). r->id is set as soon as it is known, so
 * even a failed request's answer can echo it. */
int qmp_parse(const char *line, size_t len, struct qmp_req *r, char *err, size_t n);

/* Arguments by name. Each returns 1 (found, right type), 0 (absent) or -1
 * with err naming the argument and the type it needs. */
int qmp_arg_str(const struct qmp_req *r, const char *key, char *out, size_t outn, char *err, size_t n);
int qmp_arg_u64(const struct qmp_req *r, const char *key, uint64_t *v, char *err, size_t n);
int qmp_arg_bool(const struct qmp_req *r, const char *key, bool *v, char *err, size_t n);
/* The i-th argument's name (i from 0; false past the last). */
bool qmp_arg_name(const struct qmp_req *r, int i, char *out, size_t outn);
/* The token of argument key (an object, an array, ...), -1: absent. */
int qmp_arg_tok(const struct qmp_req *r, const char *key);
/* The token after token i and all it holds (its next sibling). */
int qmp_tok_next(const struct qmp_req *r, int i);
/* Reject any argument not in the NULL-ended list: 0, or -1 with err. */
int qmp_args_only(const struct qmp_req *r, const char *const *allowed, char *err, size_t n);

/* ---- the writer: nested objects and arrays, commas and escapes its own ---- */

#define JW_DEPTH 12
struct jw {
	char *buf;
	size_t cap, len;
	bool overflow;            /* the buffer ran out: the text is cut */
	int depth;
	bool first[JW_DEPTH];
	char closer[JW_DEPTH];
};

void jw_init(struct jw *w, char *buf, size_t cap);
/* key is the member's name inside an object, NULL inside an array. */
void jw_obj(struct jw *w, const char *key);
void jw_arr(struct jw *w, const char *key);
void jw_end(struct jw *w);  /* closes the innermost object or array */
void jw_str(struct jw *w, const char *key, const char *s);
void jw_strn(struct jw *w, const char *key, const char *s, size_t n);
void jw_u64(struct jw *w, const char *key, uint64_t v);
void jw_i64(struct jw *w, const char *key, int64_t v);
void jw_bool(struct jw *w, const char *key, bool v);
void jw_raw(struct jw *w, const char *key, const char *json, size_t n); /* already JSON */
/* The text so far, NUL-ended (cut short on overflow). */
const char *jw_text(struct jw *w);

#endif
