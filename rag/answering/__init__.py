"""Writing the answer: the answerer seam, extractive and language-model answerers, their checks."""
