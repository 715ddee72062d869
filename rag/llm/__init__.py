"""The language models: packaged local GGUF weights run by llama.cpp, or a compatible server."""
