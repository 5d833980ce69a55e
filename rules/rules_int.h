/* rules_int.h: private to the rules files (rules_*.c): the parser state and the helpers they share.
 * Callers use rules.h.
 *
 * Loading (rules_parse.c, rules_notifier.c over the getters of rules_yaml.c) checks everything
 * a rule or notifier can get wrong and refuses the whole file at the first problem, with the
 * file, the line of the offending node, the rule or notifier, the key and the reason:
 * "'FILE' line N: rule 'R': key 'trip.window': reason".  Defaults are applied after a mapping
 * is read, so keys may come in any order.  Matching is in rules_match.c, the key codec in
 * rules_key.c. */
#ifndef ERRQ_RULES_INT_H
#define ERRQ_RULES_INT_H

#include "rules.h"

#include <ctype.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errq_hash.h"
#include "errq_str.h"
#include "errq_time.h"
#include "errq_yaml.h"


/* The longest field name is "details." + a detail key; each value escapes to at most twice
 * its length; plus '=' and ','. */
_Static_assert(RULES_MAX_GROUP_BY * (sizeof("details.") - 1 + RULES_DETAIL_KEY_MAX + 2 + 2 * RULES_KEY_VALUE_MAX) <
		       RULES_KEY_MAX,
	       "RULES_KEY_MAX cannot hold the longest key");
_Static_assert(RULES_MAX_MATCH <= 32 && RULES_MAX_GROUP_BY <= 32, "bit sets of 32");

#define RULES_ARENA_FIRST (16u << 10)

enum { F_MATCH = 1, F_GROUP = 2 };

/* ---- the parser ---- */

struct parser {
	struct errq_yaml y;
	const char *file;
	char *err;
	size_t errsz;
	struct ruleset *rs;
	char what[RULES_NAME_MAX + 32]; /* "rule 'x': ", "notifier #2: " or "" */
	/* each rule's inhibits: list, resolved once every rule is read (names may come later) */
	yaml_node_t *inhibits_n[RULES_MAX_RULES], *inhibit_equal_n[RULES_MAX_RULES];
};

#define FOR_PAIRS(map, pr)                                                                         \
	for (yaml_node_pair_t *pr = (map)->data.mapping.pairs.start; pr < (map)->data.mapping.pairs.top; pr++)
#define FOR_ITEMS(seq, it)                                                                         \
	for (yaml_node_item_t *it = (seq)->data.sequence.items.start; it < (seq)->data.sequence.items.top; it++)


/* rules_yaml.c */
extern const char *const rules__severities[];
int rules__fail_line(struct parser *p, int line, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int rules__fail(struct parser *p, const yaml_node_t *n, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
yaml_node_t *rules__node(struct parser *p, int i);
bool rules__is_null(const yaml_node_t *n);
void *rules__zalloc(struct parser *p, const yaml_node_t *n, size_t size);
char *rules__dup(struct parser *p, const yaml_node_t *n, const char *s);
int rules__map_key(struct parser *p, const yaml_node_t *kn, const char *prefix, const char *const *keys,
		   uint32_t *seen);
yaml_node_t *rules__find_value(struct parser *p, yaml_node_t *map, const char *k);
const char *rules__want_scalar(struct parser *p, const yaml_node_t *n, const char *path);
int rules__want_mapping(struct parser *p, const yaml_node_t *n, const char *path, const char *example);
int rules__want_list(struct parser *p, const yaml_node_t *n, const char *path, const char *example);
int rules__get_duration(struct parser *p, const yaml_node_t *n, const char *path, uint64_t min, uint64_t max,
			bool zero_ok, uint64_t *out);
int rules__get_uint(struct parser *p, const yaml_node_t *n, const char *path, uint64_t min, uint64_t max,
		    uint64_t *out);
int rules__get_decimal(struct parser *p, const yaml_node_t *n, const char *path, int digits, uint64_t min,
		       uint64_t max, const char *range, uint64_t *out);
int rules__get_choice(struct parser *p, const yaml_node_t *n, const char *path, const char *const *choices,
		      int *out);
const char *rules__get_name(struct parser *p, const yaml_node_t *n, const char *path);
int rules__get_field(struct parser *p, const yaml_node_t *n, const char *path, const char *name, unsigned use,
		     struct rules_field *f);
bool rules__same_field(const struct rules_field *a, const struct rules_field *b);

/* rules_notifier.c */
int rules__parse_notifiers(struct parser *p, yaml_node_t *n);

/* rules_inhibit.c */
int rules__resolve_inhibits(struct parser *p);

/* rules_match.c */
const char *rules__or_empty(const char *s);

/* rules_key.c */
size_t rules__key_build(const struct rule *r, const char *const *values, char *out, size_t outsz);

#endif
