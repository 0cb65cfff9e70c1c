/* The scalar type of a kernel build (plstm_graph/ops/c_build.py): each source is compiled once
 * with -DSCALAR=float -DSCALAR_IS_FLOAT=1 and once with -DSCALAR=double. */
#ifndef PLSTM_GRAPH_SCALAR_H
#define PLSTM_GRAPH_SCALAR_H
#include <stdint.h>

#ifndef SCALAR
#define SCALAR double
#endif
typedef SCALAR scalar_t;
#ifndef SCALAR_IS_FLOAT
#define SCALAR_IS_FLOAT 0
#endif
/* The vector paths pick their lane width from SCALAR_IS_FLOAT: a build that sets SCALAR
 * without it (or the other way round) must fail here rather than compute with wrong lanes. */
typedef char scalar_is_float_matches_scalar[sizeof(scalar_t) == (SCALAR_IS_FLOAT ? 4 : 8) ? 1 : -1];
#endif
