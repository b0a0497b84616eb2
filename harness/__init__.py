"""kbulk: kernel patch prototyping and test harness."""
