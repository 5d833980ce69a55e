/* fuzz_config.c: errqd's YAML config file and rules file parsers, on the same bytes
 * (server/settings.c settings_load_file, rules/ rules_load_mem; one file may hold both).
 * settings_load_file takes a path: the input is written to a memfd, read through
 * /proc/self/fd, so the parser is the daemon's own. */
#include <sys/mman.h>
#include <unistd.h>

#include "errq_yaml.h"
#include "fuzz.h"
#include "rules.h"
#include "settings.h"
#include "errq_banned.h"

static int mfd = -1;
static char mpath[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	mfd = memfd_create("errq-fuzz-config", MFD_CLOEXEC);
	FUZZ_CHECK(mfd >= 0);
	snprintf(mpath, sizeof(mpath), "/proc/self/fd/%d", mfd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512] = "";
	struct settings *s = malloc(sizeof(*s));
	struct ruleset *rs = NULL;
	if (!s || size > ERRQ_YAML_MAX_BYTES + 1)
		goto out;
	FUZZ_CHECK(ftruncate(mfd, 0) == 0 && pwrite(mfd, data, size, 0) == (ssize_t)size);

	settings_defaults(s);
	if (settings_load_file(s, mpath, err, sizeof(err)) != 0) {
		/* whole: a long key or value is quoted in part, never at the cost of the reason */
		FUZZ_CHECK(fuzz_message_ok(err) && strlen(err) < sizeof(err) - 1);
	} else {
		/* every accepted value prints, with its source */
		FILE *f = fopen("/dev/null", "w");
		FUZZ_CHECK(f != NULL);
		settings_print_effective(f, s);
		fclose(f);
	}

	err[0] = '\0';
	if (rules_load_mem(&rs, "rules.yaml", (const char *)data, size, err, sizeof(err)) != 0) {
		FUZZ_CHECK(rs == NULL && fuzz_message_ok(err) && strlen(err) < sizeof(err) - 1);
	} else {
		FUZZ_CHECK(rs != NULL);
		for (size_t i = 0; i < rs->n_rules; i++) {
			/* names are unique: each finds itself; its notifiers exist */
			FUZZ_CHECK(rules_find(rs, rs->rules[i].name) == &rs->rules[i]);
			for (size_t k = 0; k < rs->rules[i].n_notify; k++)
				FUZZ_CHECK(rs->rules[i].notify[k] < rs->n_notifiers);
		}
		for (size_t i = 0; i < rs->n_notifiers; i++)
			FUZZ_CHECK(rules_find_notifier(rs, rs->notifiers[i].name) == &rs->notifiers[i]);
	}
out:
	rules_free(rs);
	free(s);
	return 0;
}
