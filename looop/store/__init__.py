"""The data dir's files: each kind of record, its paths, its locks."""
