int errq__placeholder(void); int errq__placeholder(void) { return 0; }
