/* svc_backup.h: errq.v1.Query/Backup, an online copy of the database to a path on the
 * collector's filesystem, run on a thread of its own (svc_backup.c). */
#ifndef ERRQD_SVC_BACKUP_H
#define ERRQD_SVC_BACKUP_H

#define BACKUP_PATH_MAX 1024 /* bytes of a backup path; longer is INVALID_ARGUMENT */

struct transport;
struct backup_svc;
/* db_path NULL: storage none (every request is FAILED_PRECONDITION). */
struct backup_svc *backup_svc_new(const char *db_path);
/* Registers the method and the transport's stop hook (which cancels a running backup). */
int backup_svc_register(struct backup_svc *b, struct transport *t);
void backup_svc_free(struct backup_svc *b); /* after the transport; accepts NULL */
#endif
