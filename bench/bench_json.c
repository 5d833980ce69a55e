#include "bench_json.h"

#include <math.h>
#include <stdio.h>

#include "errq_str.h"
#include "errq_banned.h"

static void set(json_t *o, const char *prefix, const char *k, json_t *v)
{
	char key[BENCH_JSON_KEY_MAX];
	if (prefix) {
		errq_snprintf(key, sizeof(key), "%s_%s", prefix, k);
		k = key;
	}
	if (o && v)
		json_object_set_new(o, k, v);
	else
		json_decref(v);
}

void bj_str(json_t *o, const char *prefix, const char *k, const char *v)
{
	set(o, prefix, k, v ? json_string(v) : json_null());
}

void bj_u64(json_t *o, const char *prefix, const char *k, uint64_t v)
{
	/* jansson's integers are signed 64-bit; no figure of a benchmark comes near 2^63 */
	set(o, prefix, k, json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v));
}

void bj_bool(json_t *o, const char *prefix, const char *k, bool v)
{
	set(o, prefix, k, json_boolean(v));
}

void bj_null(json_t *o, const char *prefix, const char *k)
{
	set(o, prefix, k, json_null());
}

void bj_num(json_t *o, const char *prefix, const char *k, double v, int prec)
{
	if (!isfinite(v)) {
		set(o, prefix, k, json_null());
		return;
	}
	if (prec <= 0) {
		set(o, prefix, k, json_integer((json_int_t)llround(v)));
		return;
	}
	double scale = pow(10, prec);
	set(o, prefix, k, json_real(round(v * scale) / scale));
}

json_t *bj_obj(json_t *o, const char *k)
{
	json_t *c = o ? json_object() : NULL;
	if (!c || json_object_set_new(o, k, c))
		return NULL; /* json_object_set_new frees c when it fails */
	return c;
}

double bj_number(const json_t *o, const char *k)
{
	const char *key;
	json_t *v;
	if (!json_is_object(o))
		return -1;
	if (json_is_number(v = json_object_get(o, k)))
		return json_number_value(v);
	json_object_foreach((json_t *)o, key, v) {
		double d = json_is_object(v) ? bj_number(v, k) : -1;
		if (d != -1)
			return d;
	}
	return -1;
}

int bj_print(json_t *root)
{
	/* 15 significant digits: a value rounded to 3 decimals prints as written, not as the
	 * nearest double's 17 digits */
	int rc = root ? json_dumpf(root, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) : -1;
	if (!rc && (fputc('\n', stdout) == EOF || fflush(stdout)))
		rc = -1;
	json_decref(root);
	return rc;
}
