/* notify_curl.c: libcurl's multi interface on the notifier's libuv loop (the loop thread's):
 * a poll handle per socket curl asks for, one timer for curl's timeouts, and the easy
 * handles' body and header functions (see notify_int.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "notify_int.h"
#include "errq_banned.h"

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct sock_ctx *sc = h->data;
	int flags = 0;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	int running;
	curl_multi_socket_action(sc->n->multi, sc->fd, flags, &running);
	notify__check_multi(sc->n);
}

void notify__on_sock_closed(uv_handle_t *h)
{
	free(h->data);
}

int notify__sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct notifier *n = userp;
	struct sock_ctx *sc = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (sc) {
			/* stop at once: libuv aborts if two poll handles ever watch one fd */
			uv_poll_stop(&sc->poll);
			uv_close((uv_handle_t *)&sc->poll, notify__on_sock_closed);
			curl_multi_assign(n->multi, fd, NULL);
		}
		return 0;
	}
	if (!sc) {
		sc = calloc(1, sizeof(*sc));
		if (!sc)
			return -1;
		sc->fd = fd;
		sc->n = n;
		if (uv_poll_init_socket(&n->loop, &sc->poll, fd)) {
			free(sc);
			return -1;
		}
		sc->poll.data = sc;
		curl_multi_assign(n->multi, fd, sc);
	}
	int ev = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
	uv_poll_start(&sc->poll, ev, on_poll);
	return 0;
}

static void on_curl_timer(uv_timer_t *t)
{
	struct notifier *n = t->data;
	int running;
	curl_multi_socket_action(n->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	notify__check_multi(n);
}

int notify__timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct notifier *n = userp;
	if (timeout_ms < 0) {
		uv_timer_stop(&n->curl_timer);
		return 0;
	}
	/* never call curl from inside its own timer callback: a 0 ms timeout becomes 1 ms */
	uv_timer_start(&n->curl_timer, on_curl_timer, timeout_ms ? (uint64_t)timeout_ms : 1, 0);
	return 0;
}

size_t notify__discard(char *p, size_t sz, size_t nm, void *u)
{
	return sz * nm;
}

size_t notify__on_header(char *p, size_t sz, size_t nm, void *u)
{
	struct pending *pd = u;
	size_t len = sz * nm;
	static const char name[] = "retry-after:";
	if (len > sizeof(name) && strncasecmp(p, name, sizeof(name) - 1) == 0) {
		const char *v = p + sizeof(name) - 1;
		while (*v == ' ')
			v++;
		if (isdigit((unsigned char)*v))
			pd->retry_after_s = strtol(v, NULL, 10); /* seconds; an HTTP date is ignored */
	}
	return len;
}
