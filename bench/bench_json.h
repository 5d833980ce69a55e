/* bench_json.h: the benchmarks' JSON reports (errq-bench --json, errq-query-bench --json),
 * built with jansson: one object per line on stdout, keys in the order they are set.  Keys
 * may carry a prefix ("group_hot" + "p90_ms" -> "group_hot_p90_ms") so that every key of a
 * report is unique across its nesting, which keeps the reports easy to grep and to flatten. */
#ifndef ERRQ_BENCH_JSON_H
#define ERRQ_BENCH_JSON_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define BENCH_JSON_KEY_MAX 128 /* a prefixed key longer than this is cut */

/* Each sets prefix_k (prefix NULL: k) in o.  A failed allocation leaves the key out. */
void bj_str(json_t *o, const char *prefix, const char *k, const char *v); /* v NULL: null */
void bj_u64(json_t *o, const char *prefix, const char *k, uint64_t v);
void bj_bool(json_t *o, const char *prefix, const char *k, bool v);
void bj_null(json_t *o, const char *prefix, const char *k);
/* v rounded to prec decimals (prec 0: an integer); NaN and infinities are null. */
void bj_num(json_t *o, const char *prefix, const char *k, double v, int prec);
/* A new object set as k in o; returned borrowed (o owns it), or NULL out of memory. */
json_t *bj_obj(json_t *o, const char *k);

/* The number at key k anywhere in o (the reports' keys are unique across their nesting), or
 * -1 when o is NULL or holds no number there. */
double bj_number(const json_t *o, const char *k);

/* Writes root on one line to stdout and frees it.  0, or -1 when it cannot be written. */
int bj_print(json_t *root);
#endif
