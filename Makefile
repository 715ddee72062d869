# The two commands of the README. Each sets up what it needs on a fresh machine first.
.PHONY: chat test lint bench eval

chat:
	bash scripts/setup.sh
	.venv/bin/python app.py

test:
	bash scripts/setup.sh --test
	.venv/bin/ruff check rag ingest app.py tests bench
	.venv/bin/mypy
	.venv/bin/python -m pytest -q -ra

bench:
	bash scripts/setup.sh --test
	.venv/bin/python -m pip install -q --no-deps langchain-huggingface==1.2.3 langchain-chroma==1.1.0
	.venv/bin/python -m bench

eval:
	bash scripts/setup.sh
	.venv/bin/rag eval --corpus ../shared/eval/rgb/corpus.jsonl --questions ../shared/eval/rgb/questions.jsonl --json-out artifacts/eval-rgb.json
