"""The documentation site builds in MkDocs' strict mode (a broken link, a missing page or a generation error
fails), and its generated tables hold every registered method, metric and attack, and the results file's
numbers."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_site_builds_strictly_with_the_generated_tables(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    from obliviate.attacks import ATTACKS
    from obliviate.evals import METRICS
    from obliviate.methods import METHODS

    page = (tmp_path / "site" / "reference" / "methods" / "index.html").read_text()
    assert all(f"<code>{m}</code>" in page for m in METHODS)
    page = (tmp_path / "site" / "reference" / "metrics" / "index.html").read_text()
    assert all(f"<code>{m}</code>" in page for m in METRICS)
    page = (tmp_path / "site" / "reference" / "attacks" / "index.html").read_text()
    assert all(f"<code>{a}</code>" in page for a in ATTACKS)
    record = json.loads((ROOT / "bench" / "results" / "eval_speed.json").read_text())
    page = (tmp_path / "site" / "results" / "index.html").read_text()
    assert record["commit"][:10] in page and f"{record['values']['repeated_use_ratio']:.4g}" in page
    for path in (tmp_path / "site").rglob("*.html"):  # no marker left unrendered (an HTML comment shows nothing)
        assert "<!-- obliviate:" not in path.read_text(encoding="utf-8"), path


def test_every_results_file_is_rendered_and_every_marker_is_known():
    """A results marker renders its file's tables cell for cell; a marker the hook does not know is an error."""
    sys.path.insert(0, str(ROOT / "docs"))
    import hooks

    markers = [line for md in (ROOT / "docs").rglob("*.md") for line in md.read_text(encoding="utf-8").splitlines()
               if line.startswith("<!-- obliviate:")]
    assert markers and all(hooks.MARKER.fullmatch(m) for m in markers)
    named = {m.split(":", 2)[2].removesuffix(" -->") for m in markers if m.startswith("<!-- obliviate:results:")}
    for f in (ROOT / "bench" / "results").glob("*.json"):
        assert f.stem in named, f"{f.name} is on no page"
        text = hooks.render(f"results:{f.stem}")
        for table in json.loads(f.read_text())["tables"] if "tables" in json.loads(f.read_text()) else []:
            for row in table["rows"]:
                cells = [c["text"] if isinstance(c, dict) else str(c) for c in row]
                assert len(cells) == len(table["header"]), (f.name, table["title"], cells)
                assert hooks._row(*cells) in text


def test_the_readme_is_a_newcomers_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert f"```bash\n{ci}\n```" in "\n".join(lines)  # CI runs the README's test command verbatim
