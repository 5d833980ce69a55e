/* replay_main.c: runs a fuzz target over files, without libFuzzer (tests/fuzz/fuzz.h).
 * Usage: fuzz_replay_<target> FILE|DIR...  Every regular file named, and every regular file
 * directly in a directory named, is one input.  Exits 0 when every input ran (a broken check
 * or a memory error aborts), 1 when a file cannot be read or no input was found. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define REPLAY_MAX_INPUT (16u << 20) /* larger than any committed input; refuse the rest */

/* weak: only targets with one-time set-up define it */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int run_file(const char *path, unsigned *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = -1;
	struct stat sb;
	if (!f || fstat(fileno(f), &sb) != 0 || (size_t)sb.st_size > REPLAY_MAX_INPUT) {
		fprintf(stderr, "replay: cannot read '%s': %s\n", path, f ? "too large" : strerror(errno));
		goto out;
	}
	/* a copy of exactly the input's size, so ASan sees a read past its end */
	if (!(buf = malloc(sb.st_size ? (size_t)sb.st_size : 1)))
		goto out;
	len = fread(buf, 1, (size_t)sb.st_size, f);
	if (len != (size_t)sb.st_size) {
		fprintf(stderr, "replay: cannot read '%s'\n", path);
		goto out;
	}
	LLVMFuzzerTestOneInput(buf, len);
	(*n)++;
	rc = 0;
out:
	free(buf);
	if (f)
		fclose(f);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned n = 0;
	int rc = 0;
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat sb;
		if (stat(argv[i], &sb) != 0) {
			fprintf(stderr, "replay: cannot read '%s': %s\n", argv[i], strerror(errno));
			rc = 1;
		} else if (S_ISDIR(sb.st_mode)) {
			struct dirent **names = NULL;
			int k = scandir(argv[i], &names, NULL, alphasort); /* a stable order for the log */
			for (int j = 0; j < k; j++) {
				char path[4096];
				struct stat fs;
				snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
				if (stat(path, &fs) == 0 && S_ISREG(fs.st_mode) && names[j]->d_name[0] != '.' &&
				    run_file(path, &n))
					rc = 1;
				free(names[j]);
			}
			free(names);
		} else if (run_file(argv[i], &n)) {
			rc = 1;
		}
	}
	printf("replay: %u inputs ran\n", n);
	if (n == 0) {
		fprintf(stderr, "replay: no input found\n");
		rc = 1;
	}
	return rc;
}
