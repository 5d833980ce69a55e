/* placeholder: the example is being written */
int main(void) { return 1; }
