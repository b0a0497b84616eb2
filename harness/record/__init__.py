"""Stage 4, the record: run status, the typed run record, results.json and JUnit writers."""
