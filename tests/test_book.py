"""Fast checks of the book's configuration and sources (the full build runs in CI, not here).

The book is built by ``scripts/build-book.sh`` (``make book``); these tests catch, in well under a
second, what would otherwise only fail a minutes-long build: a TOC entry without its file, a
MathJax path that points nowhere or to a CDN, a citation key missing from the bibliography, or a
theory page showing the source of a library function that has been renamed.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "_config.yml"
TOC = ROOT / "_toc.yml"
SUFFIXES = (".md", ".ipynb")


def _config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def _toc() -> dict:
    return yaml.safe_load(TOC.read_text())


def _toc_entries(node) -> list[tuple[str, str]]:
    """All ("file" | "glob", value) entries of the TOC, at any depth."""
    out: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key in ("file", "glob", "root"):
            if key in node:
                out.append(("glob" if key == "glob" else "file", node[key]))
        for value in node.values():
            if isinstance(value, (list, dict)):
                out += _toc_entries(value)
    elif isinstance(node, list):
        for item in node:
            out += _toc_entries(item)
    return out


def _book_sources() -> list[Path]:
    return [p for p in (ROOT / "book").rglob("*.md")
            if "_static" not in p.parts and "runs" not in p.relative_to(ROOT / "book").parts[:1]]


def test_config_and_toc_parse():
    config, toc = _config(), _toc()
    assert isinstance(config, dict) and config.get("title")
    assert toc["format"] == "jb-book"
    assert toc["root"] == "book/intro"


def test_toc_is_valid_for_sphinx_external_toc():
    from sphinx_external_toc import parsing  # installed with the book's extra, which `make test` installs: not skipped

    site_map = parsing.parse_toc_yaml(TOC)
    assert site_map.root.docname == "book/intro"


def test_every_file_named_by_the_toc_exists():
    missing = [name for kind, name in _toc_entries(_toc()) if kind == "file"
               and not any((ROOT / (name + s)).exists() for s in SUFFIXES) and not (ROOT / name).exists()]
    assert not missing, f"_toc.yml names files that do not exist: {missing}"


def test_every_toc_glob_has_an_existing_directory_and_parts_have_an_index():
    for kind, pattern in _toc_entries(_toc()):
        if kind != "glob":
            continue
        parent = (ROOT / pattern).parent
        assert parent.is_dir(), f"glob {pattern!r}: directory {parent} does not exist"
        if pattern.endswith("/*"):
            # A part made of a glob must never be empty: its index page is always there.
            assert (parent / "index.md").exists(), f"glob {pattern!r}: {parent}/index.md is missing"


def test_toc_includes_runs_audio_baselines_and_the_training_notebook():
    entries = set(_toc_entries(_toc()))
    for glob in ("book/runs/*", "book/baselines/*"):
        assert ("glob", glob) in entries
    assert ("file", "book/notebooks/train") in entries
    assert ("file", "book/audio/index") in entries


def test_audio_pages_are_listed_in_reading_order_by_the_toc_and_the_index():
    """The audio part lists its pages one by one (a glob would sort them by name): every page of the
    folder is in the TOC, and the index page links them in the TOC's order."""
    order = [name for kind, name in _toc_entries(_toc()) if kind == "file" and name.startswith("book/audio/")
             and name != "book/audio/index"]
    pages = sorted(f"book/audio/{p.stem}" for p in (ROOT / "book/audio").glob("*.md") if p.stem != "index")
    assert sorted(order) == pages, f"audio pages missing from _toc.yml or listed twice: {order} vs {pages}"
    index = (ROOT / "book/audio/index.md").read_text()
    linked = re.findall(r"\]\(([\w-]+)\)", index)
    assert [f"book/audio/{name}" for name in linked if (ROOT / "book/audio" / f"{name}.md").exists()] == order


def test_baselines_index_claim_every_baseline_has_paper_runs():
    """book/baselines/index.md says the baselines' runs are committed for the paper profile."""
    import csv

    from bssvae.baselines import BASELINE_METHODS

    text = " ".join((ROOT / "book/baselines/index.md").read_text().split())
    assert "Their runs are committed for the `paper` profile" in text
    paper = ROOT / "results" / "paper"
    mnist = {row["method"] for row in csv.DictReader((paper / "mnist.csv").open())}
    audio = {row["method"] for row in csv.DictReader((paper / "audio.csv").open())}
    assert set(BASELINE_METHODS) <= mnist, f"no paper-profile MNIST rows for {set(BASELINE_METHODS) - mnist}"
    assert {"nmf", "mixit", "ibm", "irm"} <= audio, "the index says Table III has NMF, MixIT and the oracles"


def test_mathjax_is_served_locally():
    values = json.dumps(_config())  # the settings, without the comments
    assert "cdn" not in values.lower(), "_config.yml must not reference a CDN"
    sphinx = _config()["sphinx"]["config"]
    path = sphinx["mathjax_path"]
    assert "://" not in path and not path.startswith("//"), f"mathjax_path {path!r} is a URL"
    static_dirs = [ROOT / d for d in sphinx["html_static_path"]]
    found = [d / path for d in static_dirs if (d / path).is_file()]
    assert found, f"mathjax_path {path!r} is not a file under any of {sphinx['html_static_path']}"
    mathjax = found[0].parent
    assert list((mathjax / "output/chtml/fonts/woff-v2").glob("*.woff")), "MathJax CHTML fonts are missing"
    assert (mathjax / "LICENSE").exists() and "Apache" in (mathjax / "LICENSE").read_text()


def test_vendored_mathjax_matches_its_checksums():
    mathjax = ROOT / "book/_static/mathjax"
    lines = (mathjax / "SHA256SUMS").read_text().split("\n")
    entries = [line.split(maxsplit=1) for line in lines if line.strip()]
    assert len(entries) > 20
    for digest, name in entries:
        data = (mathjax / name.strip().lstrip("*")).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, f"{name} differs from the npm package"


def test_execution_settings():
    config = _config()
    execute = config["execute"]
    assert execute["allow_errors"] is False, "a notebook error must fail the build"
    assert execute["execute_notebooks"] in ("cache", "force")
    cache = execute.get("cache", "")
    assert cache and not cache.startswith("_build"), "the execution cache must live outside _build"
    assert "book/runs/*" in execute["exclude_patterns"], "executed run notebooks must not be re-executed"
    assert int(execute["timeout"]) >= 600
    assert config["only_build_toc_files"] is True


def test_build_script_treats_warnings_as_errors():
    script = ROOT / "scripts/build-book.sh"
    assert script.stat().st_mode & 0o111, "scripts/build-book.sh must be executable"
    text = script.read_text()
    assert re.search(r"jupyter-book build \. .*-W.*--keep-going", text)
    assert "BSSVAE_BOOK_PROFILE" in text and "book/runs" in text


def test_every_citation_key_is_in_the_bibliography():
    bib = (ROOT / "book/references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,\s]+),", bib))
    cited: set[str] = set()
    for page in _book_sources():
        for group in re.findall(r"\{(?:foot)?cite(?::\w+)?\}`([^`]+)`", page.read_text()):
            cited.update(k.strip() for k in group.split(","))
    assert cited, "no citation found in the book"
    assert not cited - keys, f"cited but not in book/references.bib: {sorted(cited - keys)}"


def _python_objects(path: Path) -> set[str]:
    """Top-level functions and classes of a module, and Class.method names."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            names.update(f"{node.name}.{item.name}" for item in node.body
                         if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return names


def test_literalincludes_point_to_existing_library_objects():
    """The theory pages show library source with {literalinclude}; each target must still exist."""
    pattern = re.compile(r"```\{literalinclude\}\s+(\S+)\s*\n:pyobject:\s*(\S+)")
    checked = 0
    for page in _book_sources():
        for rel, obj in pattern.findall(page.read_text()):
            target = (page.parent / rel).resolve()
            assert target.is_file(), f"{page.relative_to(ROOT)}: {rel} does not exist"
            assert obj in _python_objects(target), f"{page.relative_to(ROOT)}: {obj} is not in {rel}"
            checked += 1
    assert checked >= 10, f"expected the theory pages to show at least 10 library objects, found {checked}"


def test_theory_shows_each_equation_function():
    """Every function the brief names has its source shown somewhere in the book."""
    shown = set()
    for page in _book_sources():
        shown.update(re.findall(r":pyobject:\s*(\S+)", page.read_text()))
    required = {"laplace_nll", "gaussian_kl", "negative_elbo", "beta_at", "VAEBSS.encode", "VAEBSS.decode",
                "VAEBSS.forward", "vaem", "mix", "make_test_mixtures", "match_sources", "evaluate_images"}
    assert not required - shown, f"not shown in the book: {sorted(required - shown)}"


def test_the_training_notebook_is_what_its_script_writes():
    """book/notebooks/train.ipynb has one home, scripts/make_train_notebook.py: editing the notebook by
    hand would be lost the next time the script runs."""
    import runpy

    import nbformat

    built = runpy.run_path(str(ROOT / "scripts" / "make_train_notebook.py"), run_name="build")["build"]()
    committed = nbformat.read(ROOT / "book" / "notebooks" / "train.ipynb", as_version=4)
    assert [(c.cell_type, c.source, c.get("metadata", {})) for c in committed.cells] == \
        [(c.cell_type, c.source, c.get("metadata", {})) for c in built.cells], \
        "run `python scripts/make_train_notebook.py` after editing it, and edit it rather than the notebook"
    assert [c.get("id") for c in committed.cells] == [c.get("id") for c in built.cells]


def _paper_numbers() -> set[float]:
    """Every number of the paper's Tables II and III but those that are also common constants (0.5 and below)."""
    from bssvae import paper

    values = {v for cell in paper.TABLE_II.values() for v in cell} | {
        v for row in paper.TABLE_III.values() for v in row.values()}
    return {v for v in values if v > 0.5}


def _code_cells(page: Path) -> list[str]:
    """The source of each ``{code-cell}`` of a MyST page, without its options block."""
    cells, lines, i = [], page.read_text().splitlines(), 0
    while i < len(lines):
        if lines[i].startswith("```{code-cell}"):
            i += 1
            if i < len(lines) and lines[i] == "---":  # a YAML options block
                i = lines.index("---", i + 1) + 1
            while i < len(lines) and lines[i].startswith(":") and not lines[i].startswith("::"):
                i += 1  # short options (":tags: [...]")
            start = i
            while not lines[i].startswith("```"):
                i += 1
            cells.append("\n".join(lines[start:i]))
        i += 1
    return cells


def _paper_copies(source: str) -> list[str]:
    """The paper's numbers that ``source`` types itself: as a float literal, or written with two decimals in a string
    (an f-string's text included; docstrings, which are prose, excepted)."""
    numbers = _paper_numbers()
    written = re.compile(r"(?<![\d.])(" + "|".join(re.escape(f"{v:.2f}") for v in sorted(numbers)) + r")(?!\d)")
    tree = ast.parse(source)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, float) and node.value in numbers:
            found.append(repr(node.value))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found += [f"'{m}' in a string" for m in written.findall(node.value)]
    return found


def test_the_paper_numbers_are_typed_once_in_bssvae_paper():
    """Pages, scripts and the benchmark read the paper's tables from bssvae.paper: a copy typed again in their code
    could drift from it (the prose of a page may quote them; its code may not)."""
    copies = []
    for page in sorted((ROOT / "book").rglob("*.md")):
        for n, cell in enumerate(_code_cells(page)):
            found = _paper_copies(cell)
            copies += [f"{page.relative_to(ROOT)} cell {n}: {found}"] if found else []
    for path in sorted([*(ROOT / "scripts").glob("*.py"), *(ROOT / "bench").glob("*.py"), *(ROOT / "bssvae").rglob("*.py")]):
        if path.name != "paper.py":
            found = _paper_copies(path.read_text())
            copies += [f"{path.relative_to(ROOT)}: {found}"] if found else []
    assert not copies, "read them from bssvae.paper instead: " + "; ".join(copies)


def test_the_code_cell_reader_finds_a_typed_copy(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A page\n\nProse may say 26.69 dB.\n\n```{code-cell} ipython3\n---\ntags: [hide-input]\n---\n"
                    "x = 1.5\n```\n\n```{code-cell} ipython3\n:tags: [hide-input]\n\nPAPER = {('vaem', 2): (26.69, 0.93)}\n"
                    "def f():\n    \"\"\"A docstring may say 27.68.\"\"\"\n    return f\"the paper's 27.68 dB, not 127.68\"\n```\n")
    cells = _code_cells(page)
    assert len(cells) == 2 and _paper_copies(cells[0]) == []
    assert sorted(_paper_copies(cells[1])) == ["'27.68' in a string", "0.93", "26.69"]
