# Developer shortcuts. The README's two commands need only Python; make is optional.
.PHONY: dev lint reformat test e2e bench demo doc

dev:
	python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev,bench]'

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy && .venv/bin/lint-imports

reformat:
	.venv/bin/ruff check --fix . && .venv/bin/ruff format .

test:
	bash scripts/test

e2e:
	.venv/bin/python -m pytest -m e2e -q

bench:
	.venv/bin/python benchmarks/decide.py

demo:
	.venv/bin/lictor demo

doc:
	.venv/bin/python -m pytest tests/docs -q
