#include "errq_yaml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "errq_str.h"
#include "errq_banned.h"

int errq_yaml_load_mem(struct errq_yaml *y, const char *name, const char *p, size_t n, char *err,
		       size_t errsz)
{
	yaml_parser_t parser;
	y->loaded = 0;
	if (n > ERRQ_YAML_MAX_BYTES) {
		errq_snprintf(err, errsz, "'%s': larger than %u bytes", name, ERRQ_YAML_MAX_BYTES);
		return -1;
	}
	if (!yaml_parser_initialize(&parser)) {
		errq_snprintf(err, errsz, "'%s': out of memory", name);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)p, n);
	if (!yaml_parser_load(&parser, &y->doc)) {
		errq_snprintf(err, errsz, "'%s' line %zu: %s%s%s", name, parser.problem_mark.line + 1,
			      parser.problem ? parser.problem : "syntax error",
			      parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return -1;
	}
	yaml_parser_delete(&parser);
	y->loaded = 1;
	return 0;
}

int errq_yaml_load(struct errq_yaml *y, const char *path, char *err, size_t errsz)
{
	y->loaded = 0;
	FILE *f = fopen(path, "rb");
	if (!f) {
		errq_snprintf(err, errsz, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	struct errq_buf b;
	errq_buf_init(&b, ERRQ_YAML_MAX_BYTES + 1);
	char chunk[8192];
	size_t r;
	int rc = 0;
	while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (errq_buf_add(&b, chunk, r)) {
			errq_snprintf(err, errsz, "'%s': larger than %u bytes", path, ERRQ_YAML_MAX_BYTES);
			rc = -1;
			goto out;
		}
	}
	if (ferror(f)) {
		errq_snprintf(err, errsz, "cannot read '%s': %s", path, strerror(errno));
		rc = -1;
		goto out;
	}
	rc = errq_yaml_load_mem(y, path, b.p ? b.p : "", b.len, err, errsz);
out:
	fclose(f);
	errq_buf_free(&b);
	return rc;
}

void errq_yaml_free(struct errq_yaml *y)
{
	if (y && y->loaded) {
		yaml_document_delete(&y->doc);
		y->loaded = 0;
	}
}

yaml_node_t *errq_yaml_root(struct errq_yaml *y)
{
	return y->loaded ? yaml_document_get_root_node(&y->doc) : NULL;
}

yaml_node_t *errq_yaml_node(struct errq_yaml *y, int index)
{
	return yaml_document_get_node(&y->doc, index);
}

const char *errq_yaml_scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}
