/* hv_backends.h: the three backends' ops tables, for hv_init's choice
 * only (kernel/hv/ internal). */
#ifndef FERRY_HV_BACKENDS_H
#define FERRY_HV_BACKENDS_H

#include "hv.h"

extern const struct hv_ops vmx_ops; /* ept: vmx.c */
extern const struct hv_ops svm_ops; /* npt: svm.c */
extern const struct hv_ops pte_ops; /* pte: pte.c */

#endif
