"""Reading, validating, tokenizing and batching documents."""
