/* qmp_priv.h: what the JSON mode's files share (kernel/qmp_cmds.c, the
 * mode and its general commands; kernel/qmp_mig.c, the migration's). A
 * command writes its answer's "return" member into w, or returns -1 with
 * a desc in err (class GenericError). */
#ifndef FERRY_QMP_PRIV_H
#define FERRY_QMP_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include "qmp.h"

typedef int (*qmp_fn)(const struct qmp_req *r, struct jw *w, char *err, size_t n);

extern const char *const qmp_no_args[]; /* for qmp_args_only: none */

/* Run a human command line with its text captured: 0, or -1 with its
 * "error:" text in err. */
int qmp_human(const char *cmdline, char *err, size_t n);
/* The same; {"return": {}} when it succeeds. */
int qmp_human_empty(const char *cmdline, struct jw *w, char *err, size_t n);
/* {"return": {}}; returns 0. */
int qmp_empty_return(struct jw *w);
/* A string argument that becomes one word of a command line: 1, 0 when
 * absent (and optional), or -1 with err (missing, wrong type, a space). */
int qmp_word_arg(const struct qmp_req *r, const char *key, bool need, char *word, size_t wn, char *err, size_t n);

/* qmp_mig.c */
int qmp_migrate(const struct qmp_req *r, struct jw *w, char *err, size_t n);
int qmp_migrate_incoming(const struct qmp_req *r, struct jw *w, char *err, size_t n);
int qmp_migrate_cancel(const struct qmp_req *r, struct jw *w, char *err, size_t n);
int qmp_query_migrate(const struct qmp_req *r, struct jw *w, char *err, size_t n);
int qmp_query_caps(const struct qmp_req *r, struct jw *w, char *err, size_t n);
int qmp_set_caps(const struct qmp_req *r, struct jw *w, char *err, size_t n);
int qmp_query_params(const struct qmp_req *r, struct jw *w, char *err, size_t n);
int qmp_set_params(const struct qmp_req *r, struct jw *w, char *err, size_t n);

#endif
