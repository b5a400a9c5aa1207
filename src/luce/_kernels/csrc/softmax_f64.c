/* The softmax kernels for double (the templates softmax_*_t.h; see softmax.h). */
#include <stdlib.h>

#include "luce_exp.h"
#include "luce_simd.h"
#include "rows.h"
#include "softmax.h"
#include "transpose.h"

#define LUCE_T double
#define LUCE_F(name) name##_f64
#define LUCE_EXP luce_exp_f64
#define LUCE_TRANSPOSE luce_transpose8_f64
#define LUCE_TB 8 /* rows and columns of a block transposed in registers */
#include "softmax_special_t.h"
#include "softmax_rows_t.h"
#include "softmax_cols_t.h"
#include "softmax_short_t.h"
