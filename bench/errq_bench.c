/* placeholder: errq-bench arrives with the ingest-speed issue */
#include <stdio.h>
int main(void) { puts("errq-bench: not yet"); return 0; }
