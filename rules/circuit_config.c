/* circuit_config.c: checking a circuit_config against its limits (see circuit_config.h). */
#include "circuit_config.h"

#include "errq_str.h"
#include "errq_banned.h"

int circuit_config_check(const struct circuit_config *cfg, char *err, size_t errsz)
{
	const char *why = NULL;
	if (!cfg->failures && !cfg->failure_rate_ppm)
		why = "neither failures nor failure_rate";
	else if (cfg->failures > CIRCUIT_MAX_FAILURES)
		why = "failures out of range";
	else if (cfg->failure_rate_ppm > CIRCUIT_RATE_ONE)
		why = "failure_rate above 1";
	else if (cfg->failure_rate_ppm && (cfg->min_calls < 1 || cfg->min_calls > CIRCUIT_MAX_CALLS))
		why = "min_calls out of range";
	else if (cfg->window_ns % CIRCUIT_NS_PER_SEC || cfg->window_ns < CIRCUIT_MIN_WINDOW_S * CIRCUIT_NS_PER_SEC ||
		 cfg->window_ns > CIRCUIT_MAX_WINDOW_S * CIRCUIT_NS_PER_SEC)
		why = "window is not whole seconds between 1s and 24h";
	else if (cfg->recovery_timeout_ns < CIRCUIT_MIN_TIMEOUT_NS || cfg->recovery_timeout_ns > CIRCUIT_MAX_TIMEOUT_NS)
		why = "recovery_timeout out of range";
	else if (cfg->probe_ns < CIRCUIT_MIN_TIMEOUT_NS || cfg->probe_ns > CIRCUIT_MAX_TIMEOUT_NS)
		why = "probe out of range";
	else if (cfg->probe_failures < 1 || cfg->probe_failures > CIRCUIT_MAX_FAILURES)
		why = "half_open failures out of range";
	else if (cfg->probe_successes > CIRCUIT_MAX_CALLS)
		why = "half_open successes out of range";
	else if (cfg->backoff_factor < CIRCUIT_FACTOR_ONE || cfg->backoff_factor > CIRCUIT_MAX_FACTOR)
		why = "backoff factor out of range";
	else if (cfg->backoff_max_ns < cfg->recovery_timeout_ns || cfg->backoff_max_ns > CIRCUIT_MAX_TIMEOUT_NS)
		why = "backoff max out of range";
	else if (cfg->repeat_interval_ns > CIRCUIT_MAX_INTERVAL_NS)
		why = "repeat_interval out of range";
	else if (cfg->max_event_age_ns > CIRCUIT_MAX_INTERVAL_NS)
		why = "max_event_age out of range";
	if (why) {
		errq_snprintf(err, errsz, "%s", why);
		return -1;
	}
	return 0;
}
