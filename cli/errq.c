/* placeholder: the errq CLI is being written */
int main(void) { return 1; }
