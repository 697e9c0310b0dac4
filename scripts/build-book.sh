#!/usr/bin/env bash
# Build the whole book into _build/html from saved results, offline, warnings as errors.
#
#   scripts/build-book.sh                          # results of the `paper` profile
#   BSSVAE_BOOK_PROFILE=smoke scripts/build-book.sh # results of another profile (CI: smoke)
#
# Needs no network: MNIST comes from the offline copy (or the data cache), MathJax from
# book/_static/mathjax. Trains nothing: the book's pages read results/<profile>/; the training
# notebook reloads the finished run of that profile. Execution outputs are cached in
# .jupyter_cache/ and the cache is emptied whenever the results, the library or the profile change.
# Any extra arguments are passed to `jupyter-book build`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
t0=$(date +%s)

scripts/setup-venv.sh  # idempotent: returns at once when .venv is up to date

export BSSVAE_BOOK_PROFILE=${BSSVAE_BOOK_PROFILE:-paper}
export BSSVAE_OFFLINE=${BSSVAE_OFFLINE:-1}
export BSSVAE_ROOT=$root
# Run notebooks on .venv's own python3 kernel even if the user has another kernel of that name.
export JUPYTER_PATH="$root/.venv/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
export PYDEVD_DISABLE_FILE_VALIDATION=1
PY=.venv/bin/python

kernel_dir=$($PY -c 'from jupyter_client.kernelspec import KernelSpecManager as K; print(K().get_kernel_spec("python3").resource_dir)')
case "$kernel_dir" in
  "$root/.venv/"*) ;;
  *) echo "build-book: kernel python3 resolves to $kernel_dir, not to .venv; refusing to build" >&2; exit 1 ;;
esac

results="results/$BSSVAE_BOOK_PROFILE"
if [ ! -f "$results/mnist.csv" ]; then
  echo "build-book: $results/mnist.csv not found: the book shows saved results of the profile" >&2
  echo "  named by BSSVAE_BOOK_PROFILE (now '$BSSVAE_BOOK_PROFILE'); produce them with" >&2
  echo "  'bssvae sweep sweeps/mnist.yaml --profile $BSSVAE_BOOK_PROFILE' or pick another profile." >&2
  exit 1
fi

# The executed training notebooks of the runs become the "Provenance" part.
$PY - "$results/notebooks" book/runs <<'PYEOF'
"""Copy executed run notebooks into book/runs, titled by their run name."""
import sys
from pathlib import Path

import nbformat

src, dest = Path(sys.argv[1]), Path(sys.argv[2])
for old in dest.glob("*.ipynb"):
    old.unlink()
notebooks = sorted(p for p in src.glob("*.ipynb") if not p.name.startswith(".")) if src.is_dir() else []
for path in notebooks:
    nb = nbformat.read(path, as_version=4)
    # Every run shares the training notebook's title; give each its run name (the page title)
    # and keep the notebook's own title as a section heading.
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("# "):
            cell.source = "#" + cell.source.lstrip()
            break
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(
        f"# Run `{path.stem}`\n\nThe executed copy of the training notebook saved by the sweep as "
        f"`{path.as_posix()}`, shown as it ran."))
    nbformat.write(nb, dest / path.name)
print(f"build-book: {len(notebooks)} executed run notebook(s) from {src}")
PYEOF

# Empty the execution cache when anything a page reads has changed.
fingerprint=$($PY - "$BSSVAE_BOOK_PROFILE" <<'PYEOF'
import hashlib
import sys
from pathlib import Path

profile = sys.argv[1]
h = hashlib.sha256(profile.encode())
# The library and bench/ (the performance and recipe-choices pages' tables) as code; as data, all of results/: pages
# read other folders than results/<profile> too (the cpu runs, results/ablations, bench.json).
files = sorted(Path("bssvae").rglob("*.py")) + sorted(Path("bench").rglob("*.py"))
files += sorted(p for p in Path("results").rglob("*")
                if p.is_file() and p.suffix in {".csv", ".json", ".npz", ".ipynb"})
for p in files:
    h.update(p.as_posix().encode() + b"\0" + p.read_bytes())
print(h.hexdigest())
PYEOF
)
stamp=.jupyter_cache/bssvae-fingerprint
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$fingerprint" ]; then
  [ -d .jupyter_cache ] && echo "build-book: results, library or profile changed; emptying .jupyter_cache"
  rm -rf .jupyter_cache
fi

# --all re-reads every page so that -W sees every warning, not only those of edited pages.
status=0
.venv/bin/jupyter-book build . --builder html --all -W -n --keep-going "$@" || status=$?
# The cache holds only successful executions, each made from these inputs: valid even after a failure.
mkdir -p .jupyter_cache && echo "$fingerprint" > "$stamp"
if [ "$status" -ne 0 ]; then
  echo "build-book: jupyter-book failed (exit $status); the warnings above say why" >&2
  exit "$status"
fi

# Offline check: the HTML loads no script, style sheet or font from another host.
$PY - <<'PYEOF'
import re
import sys
from pathlib import Path

html = Path("_build/html")
bad = []
pattern = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*?(?:src|href)\s*=\s*["'](?:https?:)?//[^"']+""", re.I)
for page in html.rglob("*.html"):
    text = page.read_text(encoding="utf-8", errors="replace")
    bad += [f"{page}: {m.group(0)[:160]}" for m in pattern.finditer(text)
            if not re.search(r"<link\b[^>]*rel=[\"']?(?:canonical|alternate)", m.group(0))]
    if "<script" in text and "mathjax" in text.lower() and "_static/mathjax/tex-chtml.js" not in text \
            and 'class="math' in text:
        bad.append(f"{page}: has math but does not load _static/mathjax/tex-chtml.js")
if not (html / "_static/mathjax/tex-chtml.js").exists():
    bad.append("_build/html/_static/mathjax/tex-chtml.js is missing")
if bad:
    print("build-book: the HTML references external resources:\n  " + "\n  ".join(bad[:20]), file=sys.stderr)
    sys.exit(1)
PYEOF
echo "build-book: profile $BSSVAE_BOOK_PROFILE built into _build/html/index.html in $(( $(date +%s) - t0 )) s"
