"""The journal: SQLite in WAL mode behind one writer thread. The truth of pssync."""
