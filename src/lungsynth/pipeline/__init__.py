"""One function per workflow rule: files in, files out. The rules' scripts only call these."""
