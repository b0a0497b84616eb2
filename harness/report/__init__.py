"""Stage 5, reading records: summary, A/B comparison, headlines, Markdown/HTML reports."""
