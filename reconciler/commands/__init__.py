"""One module per command: each turns its options into one result (exit code, stdout lines, stderr lines)."""
