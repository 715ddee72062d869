"""Finding the passages that answer a question: dense, BM25, and the two fused."""
