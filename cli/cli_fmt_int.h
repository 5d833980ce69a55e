/* cli_fmt_int.h: what the files behind cli_fmt.h share among themselves (cli_text.c,
 * cli_table.c, cli_detail.c).  Not for the commands. */
#ifndef ERRQ_CLI_FMT_INT_H
#define ERRQ_CLI_FMT_INT_H
#include <stddef.h>
#include <stdint.h>

#include "errq_str.h"

/* cli_text.c: decodes the character at s[*i] and advances *i past it (an invalid byte is
 * U+FFFD and one byte); the columns a terminal gives code point c (0, 1 or 2). */
uint32_t cli__next_cp(const unsigned char *s, size_t n, size_t *i);
size_t cli__cp_width(uint32_t c);

/* cli_table.c: the escape sequence that turns style s on, or NULL for none. */
const char *cli__style_on(unsigned char s);

/* cli_detail.c: appends n spaces.  0, or -1 out of memory. */
int cli__put_spaces(struct errq_buf *b, size_t n);
#endif
