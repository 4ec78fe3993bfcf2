"""What the test suite (tests/) and the measurements (benchmarks/) both drive: fake students of the
homework, the attack corpus, and the course's viewers in a real browser.

Neither the kit nor its tests: tests/ and benchmarks/ import from here, and nothing here imports
from either. `fake_class.py`, `attack_corpus.py` and `third_code.pt` hold the homework's answers (or
build submissions from the instructor version in solutions/), so the student bundle leaves them
out (grading/bundle.py, LEFT_OUT).
"""
