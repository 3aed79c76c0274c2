#!/usr/bin/env bash
# Build the HTML docs site of the oci.runtime collection into build/docs/html (`make docs`).
#
#   1. antsibull-docs lints the plugin and role docs (markup, references), then writes the RST pages of every module, plugin and role from their own documentation
#      (DOCUMENTATION/EXAMPLES/RETURN, meta/argument_specs.yml), failing on any parse or schema error.
#   2. The site's own pages (docs/site/) and the Markdown guides (docs/*.md) are added.
#   3. sphinx-build turns it into HTML with warnings as errors (-W), so a broken reference fails the build.
#
# It reads the collection from the copy that scripts/run-tests.sh keeps in build/collections (refreshed
# first). Run scripts/setup.sh first (make setup).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
SITE="$ROOT/build/docs"

log() { printf 'docs: %s\n' "$*"; }
die() { printf 'docs: ERROR: %s\n' "$*" >&2; exit 1; }

if [ ! -x "$VENV/bin/antsibull-docs" ] || [ ! -x "$VENV/bin/sphinx-build" ]; then
    die "antsibull-docs or sphinx-build is missing from $VENV: run 'make setup'"
fi
export PATH="$VENV/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/build/collections"

bash "$ROOT/scripts/run-tests.sh" --sync-only >/dev/null
rm -rf "$SITE"
mkdir -p "$SITE/rst"
chmod go-w "$SITE/rst"  # antsibull-docs wants its output directory writable only by its owner

log "antsibull-docs lint-collection-docs: the plugin and role docs of oci.runtime"
(cd "$ROOT/build/collections/ansible_collections/oci/runtime" && antsibull-docs lint-collection-docs --plugin-docs .)

log "antsibull-docs: collection pages of oci.runtime"
antsibull-docs --config-file "$ROOT/docs/site/antsibull-docs.cfg" collection \
    --use-current --fail-on-error --cleanup everything --dest-dir "$SITE/rst" oci.runtime

cp "$ROOT/docs/site/conf.py" "$SITE/"
cp "$ROOT/docs/site/index.rst" "$ROOT/docs/site/external.rst" "$SITE/rst/"
mkdir -p "$SITE/rst/guides"
cp "$ROOT"/docs/*.md "$SITE/rst/guides/"
# The guides show bench charts as ../bench/results/<date>.png, as on the repository's own pages.
mkdir -p "$SITE/rst/bench/results"
cp "$ROOT"/bench/results/*.png "$SITE/rst/bench/results/"

log "sphinx-build (warnings are errors)"
sphinx-build -q -W --keep-going -b html -c "$SITE" "$SITE/rst" "$SITE/html"
log "ok: $SITE/html/index.html"
