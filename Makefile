# infogan-course: `make lab` opens the course; `make test` runs the test suite.
# Both create the virtual environment .venv on first use (Python 3.11+).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATASET ?= mnist
MINUTES ?= 10
RUN ?= runs/$(DATASET)
# the venv's absolute path, computed by the shell (make's own path functions split on spaces)
VENV_ABS = $$(cd "$(VENV)" && pwd)

.PHONY: setup lab dashboard html demo train sample evaluate test benchmarks notebook-times weights clean-runs help \
	release grade feedback student-bundle hub

help:
	@echo "make lab        set up .venv and open the course (notebooks/, assignments/) in JupyterLab"
	@echo "make dashboard  set up .venv and serve the viewers as a web page (Voila), notebooks/dashboard.ipynb"
	@echo "make html       execute the notebooks and render them as HTML pages in build/html/"
	@echo "make demo       set up .venv, train InfoGAN on MNIST for $(MINUTES) min, save figures"
	@echo "make test       set up .venv with the test tools and run the test suite"
	@echo "make train      train (DATASET=mnist|fashion-mnist MINUTES=10 RUN=runs/mnist)"
	@echo "make evaluate   Q's accuracy and L_I of RUN's checkpoint"
	@echo "make benchmarks the speed and accuracy figures (slow: about 2 hours)"
	@echo "make weights    remake the shipped weights in infogan_lib/pretrained/ (about 45 min)"
	@echo "make release    regenerate the student version assignments/ from solutions/ (nbgrader)"
	@echo "make grade      autograde every submission in submitted/, write grades.csv and grading-report.md"
	@echo "make feedback   the same, plus feedback/ for students (hidden tests removed)"
	@echo "make student-bundle  dist/infogan-course-student.tar.gz: the kit without solutions/"
	@echo "make hub        (as root) a course hub on JupyterHub for the class in COURSE=hub/course.toml"

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $@

setup: $(VENV)/.installed

demo: setup
	@if [ -f "$(RUN)/checkpoint.pt" ]; then \
	  $(PY) -m infogan_lib train --out-dir "$(RUN)" --minutes $(MINUTES) --resume; \
	else \
	  $(PY) -m infogan_lib train --dataset $(DATASET) --out-dir "$(RUN)" --minutes $(MINUTES); fi
	$(PY) -m infogan_lib evaluate "$(RUN)/checkpoint.pt"
	$(PY) -m infogan_lib sample "$(RUN)/checkpoint.pt" --kind b --out "$(RUN)/categories.png"
	$(PY) -m infogan_lib sample "$(RUN)/checkpoint.pt" --kind c --code 1 --out "$(RUN)/sweep_c1.png"
	$(PY) -m infogan_lib sample "$(RUN)/checkpoint.pt" --kind c --code 2 --out "$(RUN)/sweep_c2.png"
	@echo "figures: $(RUN)/categories.png $(RUN)/sweep_c1.png $(RUN)/sweep_c2.png $(RUN)/figures/"

# the student's view: the course folder with the instructor's files and nbgrader's tools left out
# (student-lab/; instructors: plain `.venv/bin/jupyter lab` here, INSTRUCTORS.md)
lab: setup
	venv="$(VENV_ABS)" && JUPYTER_CONFIG_PATH="$$(pwd)/student-lab$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
	  "$$venv/bin/jupyter" lab notebooks/00_setup_check.ipynb --ServerApp.root_dir=. $(LAB_ARGS) \
	  $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

dashboard: setup
	$(VENV)/bin/voila notebooks/dashboard.ipynb $(VOILA_ARGS)

html: setup
	mkdir -p build/html
	$(VENV)/bin/jupyter nbconvert --to html --execute --ExecutePreprocessor.timeout=1800 \
	  --output-dir build/html notebooks/*.ipynb
	@echo "open build/html/00_setup_check.html"

train: setup
	$(PY) -m infogan_lib train --dataset $(DATASET) --out-dir "$(RUN)" --minutes $(MINUTES)

evaluate: setup
	$(PY) -m infogan_lib evaluate "$(RUN)/checkpoint.pt" --quality

test: setup
	$(PY) -m pytest -q

benchmarks: setup
	$(PY) benchmarks/throughput.py --paper
	$(PY) benchmarks/time_to_accuracy.py

notebook-times: setup
	$(PY) benchmarks/notebooks.py

weights: setup
	$(PY) tools/make_pretrained.py
	$(PY) tools/make_comparisons.py

# ---- a class on JupyterHub (INSTRUCTORS.md, "A class on JupyterHub"); as root --------------------
COURSE ?= hub/course.toml
HUB_PROXY = .hub-node/node_modules/.bin/configurable-http-proxy

$(HUB_PROXY):
	npm install --silent --no-audit --no-fund --prefix .hub-node configurable-http-proxy@5

hub: setup $(HUB_PROXY)
	$(PY) -m coursehub.setup "$(COURSE)"
	INFOGAN_COURSE="$(COURSE)" INFOGAN_HUB_PROXY="$$(pwd)/$(HUB_PROXY)" PATH="$(VENV_ABS)/bin:$$PATH" \
	  $(VENV)/bin/jupyterhub -f hub/jupyterhub_config.py

# ---- the homework (INSTRUCTORS.md) ----------------------------------------------------------------
release: setup
	rm -rf assignments/infogan_homework
	PATH="$(VENV_ABS)/bin:$$PATH" $(PY) -m nbgrader generate_assignment infogan_homework --force

grade: setup
	$(PY) -m grading.grade $(GRADE_ARGS)

feedback: setup
	$(PY) -m grading.grade --feedback $(GRADE_ARGS)

student-bundle: setup
	$(PY) -m grading.bundle

clean-runs:
	rm -rf runs
