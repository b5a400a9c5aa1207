/* The softmax kernels for float (the templates softmax_*_t.h; see softmax.h). */
#include <stdlib.h>

#include "luce_exp.h"
#include "luce_simd.h"
#include "rows.h"
#include "softmax.h"
#include "transpose.h"

#define LUCE_T float
#define LUCE_F(name) name##_f32
#define LUCE_EXP luce_exp_f32
#define LUCE_TRANSPOSE luce_transpose16_f32
#define LUCE_TB 16 /* rows and columns of a block transposed in registers */
#include "softmax_special_t.h"
#include "softmax_rows_t.h"
#include "softmax_cols_t.h"
#include "softmax_short_t.h"
