# Two commands do everything on a fresh Debian 12 machine (set-up included, idempotent):
#   make demo   the multi-party demo over ROS 2 topics
#   make test   the test suite (what CI runs)
.PHONY: setup demo test eval eval-compare bench constraints clean

PY := .venv/bin/python
VR := .venv/bin/voice-robot

setup:
	@tools/setup.sh

demo: setup
	@$(VR) demo

test: setup
	@ROS_LOG_DIR=$${ROS_LOG_DIR:-$(CURDIR)/build/ros_log} $(PY) -m pytest -q -p no:cacheprovider tests

eval: setup
	@$(VR) eval sim/scenarios --json build/eval.json --plot build/plots

eval-compare: setup
	@$(VR) eval sim/scenarios --compare --json build/eval.json --plot build/plots

bench: setup
	@$(VR) bench all

constraints:
	@.venv/bin/pip freeze --exclude-editable | grep -vi '^voice.robot' | sed 's/+cpu$$//' \
	  | (echo "# Every version in the venv, pinned (regenerate with: make constraints)."; cat) > requirements/constraints.txt

clean:
	rm -rf build .pytest_cache
