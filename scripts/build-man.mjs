// Placeholder replaced by the man page converter.
