/* sbench.h: what the storage benchmarks share (bench/storage/): their command lines' number
 * flags and the temporary database they make when not given one. */
#ifndef ERRQ_SBENCH_H
#define ERRQ_SBENCH_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parses "--name N" pairs into the long fields names[i] -> dst[i] (0..100 000 000), and
 * "--db PATH" into *db.  Returns 0, or -1 on a flag it does not know or a bad number. */
static inline int sbench_parse(int argc, char **argv, const char *const *names, long *const *dst, int n,
			       const char **db)
{
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			return -1;
		const char *k = argv[i], *v = argv[++i];
		if (!strcmp(k, "--db")) {
			*db = v;
			continue;
		}
		int j = 0;
		while (j < n && strcmp(k, names[j]))
			j++;
		if (j == n)
			return -1;
		char *end;
		*dst[j] = strtol(v, &end, 10);
		if (*end || *dst[j] < 0 || *dst[j] > 100000000)
			return -1;
	}
	return 0;
}

/* A database in a new temporary directory (tmp: a mkdtemp template): its path in path. */
static inline int sbench_tmpdb(char *tmp, char *path, size_t pathsz)
{
	if (!mkdtemp(tmp))
		return -1;
	snprintf(path, pathsz, "%s/errq.db", tmp);
	return 0;
}

/* Removes it, with its WAL and shared-memory files. */
static inline void sbench_tmpdb_remove(const char *tmp, const char *path)
{
	char p[256];
	const char *sfx[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		unlink(p);
	}
	rmdir(tmp);
}
#endif
