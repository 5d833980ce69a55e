/* errq_outcome.c: errq_record_outcome() and the outcome windows.
 *
 * Threading protocol (the whole picture is at the top of errq_client.c)
 * ---------------------------------------------------------------------
 *  - c->omu guards c->o_live (the current window's table and its entries), o_closing and the
 *    o_recorded / o_dropped counters.  Any number of application threads record into o_live
 *    under omu; nothing under omu allocates, blocks or takes another lock.  Lock order when
 *    both are needed: mu, then omu (errq_client_stats and the fork handlers).
 *  - c->snd.o_spare belongs to the sender thread.  To cut a window the sender swaps o_live
 *    and o_spare under omu (O(1)), then encodes and empties the old table outside the lock.
 *    So a record never waits for encoding, and neither table is ever reallocated.
 *  - A record for a task new in the window allocates its entry outside the lock, then
 *    re-locks and looks again (the window may have been cut meanwhile, or another thread
 *    may have added the task): the entry is inserted or freed.
 *  - The first record into an empty window stamps the window's start and wakes the sender
 *    (under mu, only when it sleeps) so that it cuts the window on time.
 *
 * Bounds: ERRQ__OUTCOME_MAX_TASKS keys per window (a new key beyond is refused and
 * counted); ERRQ__OUTCOME_MAX_BATCHES outcome batches waiting in memory (beyond, the window
 * simply grows longer: counts are never lost for lack of room, and never take more memory).
 */
#include "client_int.h"

#include <stdlib.h>
#include <string.h>

#include "errq_time.h"
#include "errq_banned.h"

/* FNV-1a over the task's bytes. */
static uint32_t task_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

/* The slot holding task, or the empty slot where it would go.  omu held (or the table is
 * the sender's own).  The table is never more than half full, so this terminates. */
static struct errq_outcome_entry **find_slot(struct errq_outcome_table *t, uint32_t h,
					     const char *task, size_t n)
{
	uint32_t mask = ERRQ__OUTCOME_SLOTS - 1;
	for (uint32_t i = h & mask;; i = (i + 1) & mask) {
		struct errq_outcome_entry *e = t->slots[i];
		if (!e || (e->hash == h && e->len == n && memcmp(e->task, task, n) == 0))
			return &t->slots[i];
	}
}

static struct errq_outcome_table *table_new(void)
{
	struct errq_outcome_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->slots = calloc(ERRQ__OUTCOME_SLOTS, sizeof(*t->slots));
	if (!t->slots) {
		free(t);
		return NULL;
	}
	return t;
}

/* Frees the entries; the table is empty afterwards. */
static void table_clear(struct errq_outcome_table *t)
{
	for (uint32_t i = 0; i < ERRQ__OUTCOME_SLOTS && t->count; i++) {
		if (t->slots[i]) {
			free(t->slots[i]);
			t->slots[i] = NULL;
			t->count--;
		}
	}
	t->count = 0;
}

static void table_free(struct errq_outcome_table *t)
{
	if (!t)
		return;
	table_clear(t);
	free(t->slots);
	free(t);
}

int errq__outcomes_init(errq_client_t *c)
{
	c->o_live = table_new();
	c->snd.o_spare = table_new();
	return c->o_live && c->snd.o_spare ? ERRQ_OK : ERRQ_ENOMEM;
}

void errq__outcomes_free(errq_client_t *c)
{
	table_free(c->o_live);
	table_free(c->snd.o_spare);
	c->o_live = c->snd.o_spare = NULL;
}

void errq__outcomes_free_live(errq_client_t *c)
{
	table_free(c->o_live);
	c->o_live = NULL;
}

ERRQ_EXPORT int errq_record_outcome(errq_client_t *c, const char *task, bool ok)
{
	struct errq_outcome_entry *fresh = NULL;
	bool wake = false;
	int rc;

	if (!c)
		return ERRQ_EINVAL;
	if (!task)
		task = "";
	size_t n = strnlen(task, ERRQ__MAX_TASK_LEN + 1); /* bounded; cut at a character when sent */
	uint32_t h = task_hash(task, n);
	for (;;) {
		pthread_mutex_lock(&c->omu);
		if (c->forked || !c->cfg.service || c->o_closing) {
			rc = c->forked ? ERRQ_EFORKED : c->o_closing ? ERRQ_ECLOSED : ERRQ_EINVAL;
			break;
		}
		struct errq_outcome_table *t = c->o_live;
		struct errq_outcome_entry **slot = find_slot(t, h, task, n);
		if (!*slot) {
			if (t->count >= ERRQ__OUTCOME_MAX_TASKS) {
				rc = ERRQ_EQUEUEFULL;
				break;
			}
			if (!fresh) {
				pthread_mutex_unlock(&c->omu);
				fresh = malloc(sizeof(*fresh) + n + 1);
				if (!fresh) {
					pthread_mutex_lock(&c->omu);
					rc = ERRQ_ENOMEM;
					break;
				}
				fresh->ok = fresh->failed = 0;
				fresh->hash = h;
				fresh->len = (uint32_t)n;
				memcpy(fresh->task, task, n);
				fresh->task[n] = '\0';
				continue; /* look again: the window may have been cut meanwhile */
			}
			*slot = fresh;
			fresh = NULL;
			if (t->count++ == 0) {
				t->start_unix_ns = errq_now_ns();
				t->start_mono_ns = errq_mono_ns();
				wake = true;
			}
		}
		if (ok)
			(*slot)->ok++;
		else
			(*slot)->failed++;
		c->o_recorded++;
		rc = ERRQ_OK;
		break;
	}
	if (rc != ERRQ_OK)
		c->o_dropped++;
	pthread_mutex_unlock(&c->omu);
	free(fresh); /* another thread added the task first */
	if (wake) {
		/* a window opened: the sender must wake up to cut it on time */
		pthread_mutex_lock(&c->mu);
		c->o_windows++; /* the sender re-reads the table before it sleeps again */
		if (c->sender_waiting)
			pthread_cond_signal(&c->wake_cv);
		pthread_mutex_unlock(&c->mu);
	}
	return rc;
}

uint64_t errq__outcomes_tick(errq_client_t *c, uint64_t now, bool final)
{
	struct errq_sender *s = &c->snd;
	uint64_t interval = (uint64_t)c->cfg.outcome_interval_s * ERRQ_NS_PER_SEC;
	struct errq_outcome_table *t;

	pthread_mutex_lock(&c->omu);
	t = c->o_live;
	if (!t->count) {
		pthread_mutex_unlock(&c->omu);
		return UINT64_MAX;
	}
	uint64_t due = t->start_mono_ns + interval;
	if (!final && (now < due || s->b_outcome_batches >= ERRQ__OUTCOME_MAX_BATCHES)) {
		pthread_mutex_unlock(&c->omu);
		/* when batches are waiting the window grows until one is answered (which wakes
		 * this thread anyway) */
		return now < due ? due : UINT64_MAX;
	}
	c->o_live = s->o_spare;
	pthread_mutex_unlock(&c->omu);
	s->o_spare = t;

	/* the window is ours now: encode it */
	struct errq_outcome_entry **ents = malloc(t->count * sizeof(*ents));
	struct errq_batch *b = calloc(1, sizeof(*b));
	uint64_t calls = 0;
	size_t n = 0;
	for (uint32_t i = 0; i < ERRQ__OUTCOME_SLOTS; i++) {
		if (t->slots[i]) {
			if (ents)
				ents[n++] = t->slots[i];
			calls += t->slots[i]->ok + t->slots[i]->failed;
		}
	}
	uint64_t elapsed = now > t->start_mono_ns ? now - t->start_mono_ns : 0;
	uint64_t secs = (elapsed + ERRQ_NS_PER_SEC / 2) / ERRQ_NS_PER_SEC;
	if (secs < 1)
		secs = 1;
	if (secs > UINT32_MAX)
		secs = UINT32_MAX;
	uint8_t id[ERRQ_ID_LEN];
	uint64_t r0 = errq_idgen_rand(&s->rng), r1 = errq_idgen_rand(&s->rng);
	memcpy(id, &r0, 8);
	memcpy(id + 8, &r1, 8);
	if (!ents || !b ||
	    errq__outcomes_encode(&c->cfg, ents, n, t->start_unix_ns, (uint32_t)secs, id, &b->body)) {
		free(b);
		pthread_mutex_lock(&c->omu);
		c->o_dropped += calls;
		pthread_mutex_unlock(&c->omu);
	} else {
		b->n_outcomes = n;
		b->n_calls = calls;
		errq__batch_append(c, b);
		pthread_mutex_lock(&c->mu);
		c->o_unresolved = s->b_outcome_batches;
		pthread_mutex_unlock(&c->mu);
	}
	free(ents);
	table_clear(t);
	return UINT64_MAX;
}
