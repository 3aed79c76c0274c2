# oci.runtime developer entry points. `make setup` prepares the machine (Debian 12/13, as root);
# every other target runs it first, which takes well under a second once done.
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
COLLECTIONS := $(CURDIR)/build/collections
DEMO_INVENTORY := $(CURDIR)/build/demo-inventory.ini
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_PYTHON_INTERPRETER := $(VENV)/bin/python

.PHONY: setup demo test docs fleet sanity types units integration molecule pytest_ansible functional artifact guest clean distclean bench

setup:
	bash scripts/setup.sh

# The demo playbook runs against this host, with the collection from the refreshed build copy.
demo: setup
	@test -f playbooks/demo.yml || { echo "make: playbooks/demo.yml is missing" >&2; exit 1; }
	bash scripts/run-tests.sh --sync-only
	printf 'localhost ansible_connection=local ansible_python_interpreter=%s\n' "$(VENV)/bin/python" >$(DEMO_INVENTORY)
	$(VENV)/bin/ansible-playbook -i $(DEMO_INVENTORY) -e ansible_python_interpreter=$(VENV)/bin/python playbooks/demo.yml

test: setup
	bash scripts/run-tests.sh

# The fleet example: 8 inventory hosts (2 over SSH to a loopback sshd), 10 containers each; three
# checked runs, then everything is removed again (scripts/fleet.sh, docs/fleet.md).
fleet: setup
	bash scripts/run-tests.sh fleet

# The HTML docs site (antsibull-docs + Sphinx, warnings are errors) in build/docs/html.
docs: setup
	bash scripts/docs.sh

sanity types units integration molecule pytest_ansible functional artifact guest: setup
	bash scripts/run-tests.sh $@

# Issue 10's benchmarks (not part of `make test`; about 15 minutes): results in bench/results/<date>.*
bench: setup
	bash scripts/setup-bench.sh
	bash scripts/run-tests.sh --sync-only
	$(CURDIR)/.venv-bench/bin/python bench/bench.py
	$(CURDIR)/.venv-bench/bin/python bench/images.py --json bench/results/images-$$(date -u +%F).json
	$(CURDIR)/.venv-bench/bin/python bench/network_attach.py

# Build output and test results; `make distclean` also drops the venv.
clean:
	rm -rf build tests/output collections .pytest_cache
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf .venv
