/* errq_yaml.h: load a YAML file into libyaml's document tree, with the size limit and the
 * error format ("FILE line N: ...") that every errq config reader shares. */
#ifndef ERRQ_YAML_H
#define ERRQ_YAML_H
#include <stddef.h>
#include <yaml.h>

#define ERRQ_YAML_MAX_BYTES (1u << 20) /* a config or rules file larger than 1 MiB is refused */

struct errq_yaml {
	yaml_document_t doc;
	int loaded;
};

/* Loads path.  Returns 0, or -1 with a one-line reason in err ("'FILE' line 3: ..."). */
int errq_yaml_load(struct errq_yaml *y, const char *path, char *err, size_t errsz);
/* Same, from memory; name is used in messages. */
int errq_yaml_load_mem(struct errq_yaml *y, const char *name, const char *p, size_t n, char *err,
		       size_t errsz);
void errq_yaml_free(struct errq_yaml *y); /* accepts a never-loaded y */
yaml_node_t *errq_yaml_root(struct errq_yaml *y);
yaml_node_t *errq_yaml_node(struct errq_yaml *y, int index);
/* 1-based line of a node */
static inline int errq_yaml_line(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}
/* A scalar's text, or NULL when n is not a scalar. */
const char *errq_yaml_scalar(const yaml_node_t *n);
#endif
