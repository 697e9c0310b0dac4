#!/usr/bin/env bash
# (Re)create the vendored MathJax under book/_static/mathjax from the npm registry's tarball.
#
# The book serves MathJax from its own _static folder so math renders without internet; the files
# are committed, so building the book never runs this script. Run it only to check the vendored
# copy against the registry (--check) or to change the MathJax version (edit VERSION and SHA512).
#
#   scripts/fetch-mathjax.sh           # download, verify, replace book/_static/mathjax
#   scripts/fetch-mathjax.sh --check   # download, verify, and compare with the vendored files
#
# Needs npm (npm pack) or curl; the tarball is checked against npm's published sha512 integrity.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=3.2.2
# npm view mathjax@3.2.2 dist.integrity
SHA512="Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
DEST=book/_static/mathjax
# What the book needs: the TeX-input/CommonHTML-output bundle, its web fonts, the TeX extensions
# that \require or autoload fetch on demand, and the accessibility components its menu loads.
KEEP=(es5/tex-chtml.js es5/output/chtml/fonts/woff-v2 es5/input/tex/extensions es5/a11y LICENSE)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tgz="$tmp/mathjax-$VERSION.tgz"
if command -v npm >/dev/null 2>&1; then
  (cd "$tmp" && npm pack --silent "mathjax@$VERSION" >/dev/null)
else
  curl -fsSL -o "$tgz" "https://registry.npmjs.org/mathjax/-/mathjax-$VERSION.tgz"
fi
got=$(python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$tgz")
if [ "$got" != "$SHA512" ]; then
  echo "mathjax-$VERSION.tgz: sha512 $got does not match the registry's $SHA512" >&2
  exit 1
fi
tar xzf "$tgz" -C "$tmp"
out="$tmp/out"
mkdir -p "$out"
for p in "${KEEP[@]}"; do
  mkdir -p "$out/$(dirname "${p#es5/}")"
  cp -r "$tmp/package/$p" "$out/${p#es5/}"
done
rm -f "$out/input/tex/extensions/all-packages.js"  # every extension in one file; autoload needs none of it
(cd "$out" && find . -type f ! -name SHA256SUMS | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)
if [ "${1:-}" = "--check" ]; then
  if diff -r "$out" "$DEST" --exclude=README.md >/dev/null; then
    echo "book/_static/mathjax matches mathjax@$VERSION from the registry"
  else
    echo "book/_static/mathjax differs from mathjax@$VERSION from the registry" >&2
    diff -rq "$out" "$DEST" --exclude=README.md >&2 || true
    exit 1
  fi
else
  readme=""
  [ -f "$DEST/README.md" ] && readme=$(cat "$DEST/README.md")
  rm -rf "$DEST"
  cp -r "$out" "$DEST"
  [ -n "$readme" ] && printf '%s\n' "$readme" > "$DEST/README.md"
  echo "wrote $DEST (mathjax@$VERSION, $(du -sh "$DEST" | cut -f1))"
fi
