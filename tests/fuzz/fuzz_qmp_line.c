/* fuzz_qmp_line.c: libFuzzer target for the machine interface's request
 * line (codec/qmp.c): any bytes are parsed; a request that passes has
 * every argument read as each type; and an answer written from what was
 * read (strings escaped by the writer) must parse again as JSON. A crash,
 * a sanitizer report, or an answer that does not parse is a bug. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct qmp_req r, back;
	static char answer[8192], again[8192 + 64];
	char err[256], name[QMP_NAME_MAX], s[512];
	if (size >= QMP_LINE_MAX)
		return 0;
	if (qmp_parse((const char *)data, size, &r, err, sizeof(err)) < 0) {
		if (!err[0] || strlen(err) >= sizeof(err))
			abort(); /* every refusal says why */
		return 0;
	}
	struct jw w;
	jw_init(&w, answer, sizeof(answer));
	jw_obj(&w, NULL);
	jw_str(&w, "execute", r.execute);
	for (int i = 0; qmp_arg_name(&r, i, name, sizeof(name)); i++) {
		uint64_t v;
		bool b;
		if (qmp_arg_str(&r, name, s, sizeof(s), err, sizeof(err)) == 1)
			jw_str(&w, name, s);
		if (qmp_arg_u64(&r, name, &v, err, sizeof(err)) == 1)
			jw_u64(&w, name, v);
		if (qmp_arg_bool(&r, name, &b, err, sizeof(err)) == 1)
			jw_bool(&w, name, b);
	}
	if (r.id >= 0)
		jw_strn(&w, "id", r.js + r.tok[r.id].start, (size_t)(r.tok[r.id].end - r.tok[r.id].start));
	jw_end(&w);
	if (w.overflow)
		return 0;
	int n = snprintf(again, sizeof(again), "{\"execute\": \"x\", \"arguments\": %s}", jw_text(&w));
	if (qmp_parse(again, (size_t)n, &back, err, sizeof(err)) < 0) {
		fprintf(stderr, "the answer does not parse (%s): %s\n", err, again);
		abort();
	}
	return 0;
}
