"""Building blocks that know no data dir: errors, ids, files, processes, watching."""
