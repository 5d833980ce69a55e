/* errq_error.c: error names and messages (generated from ERRQ_ERRNO_MAP), and the version. */
#include "client_int.h"

#include "errq_banned.h"

ERRQ_EXPORT const char *errq_strerror(int err)
{
	switch (err) {
	case ERRQ_OK:
		return "ok";
#define XX(name, value, msg) \
	case ERRQ_##name:    \
		return msg;
		ERRQ_ERRNO_MAP(XX)
#undef XX
	}
	return "unknown error";
}

ERRQ_EXPORT const char *errq_err_name(int err)
{
	switch (err) {
	case ERRQ_OK:
		return "OK";
#define XX(name, value, msg) \
	case ERRQ_##name:    \
		return #name;
		ERRQ_ERRNO_MAP(XX)
#undef XX
	}
	return "UNKNOWN";
}

#define ERRQ_STR_(x) #x
#define ERRQ_XSTR_(x) ERRQ_STR_(x)

ERRQ_EXPORT const char *errq_version(void)
{
	return ERRQ_XSTR_(ERRQ_VERSION_MAJOR) "." ERRQ_XSTR_(ERRQ_VERSION_MINOR) "." ERRQ_XSTR_(
	    ERRQ_VERSION_PATCH);
}
