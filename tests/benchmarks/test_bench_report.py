"""bench.report: the one implementation of each report helper. LaTeX escaping of every special character, CSV
with a provenance line (and reading it back), markdown, the Pareto front, the paired test on identical inputs,
README block rewriting, 1-D label spreading, and the label-collision check the figures are held to."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as scipy_stats

from bench import report
from bench.report import stats


# --- LaTeX ------------------------------------------------------------------------------------------------------
def test_latex_escape_every_special_character():
    assert report.latex_escape("\\&%$#_{}~^<>|") == (r"\textbackslash{}\&\%\$\#\_\{\}\textasciitilde{}"
                                                       r"\textasciicircum{}\textless{}\textgreater{}\textbar{}")
    # one pass: the braces and backslashes an escape introduces are not escaped again
    assert report.latex_escape("a_b\\c") == r"a\_b\textbackslash{}c"
    assert report.latex_escape(3.5) == "3.5" and report.latex_escape("plain text, 4-bit (g128)") == \
        "plain text, 4-bit (g128)"


def test_latex_table_escapes_cells_headers_caption():
    tex = report.latex_table(["bits/w_eight", "ppl %"], [["q35 g128 #1", "45.5"], ["a&b", "$5"]],
                             "caption with 50% _under_", label="tab1", align="lr", comment="git abc_def")
    lines = tex.splitlines()
    assert lines[0] == "% git abc_def"
    assert r"\begin{tabular}{lr}" in tex and r"bits/w\_eight & ppl \% \\" in tex
    assert r"q35 g128 \#1 & 45.5 \\" in tex and r"a\&b & \$5 \\" in tex
    assert r"\caption{caption with 50\% \_under\_}\label{tab:tab1}" in tex
    long = report.latex_table(["a"], [["1"]], "c", longtable=True)
    assert long.startswith(r"\begin{longtable}{l}") and r"\endhead" in long
    with pytest.raises(ValueError):
        report.latex_table(["a", "b"], [], "c", align="l")


# --- CSV and markdown ---------------------------------------------------------------------------------------------
def test_csv_provenance_line_and_round_trip(tmp_path):
    rows = [{"method": "q35, g128", "bpw": 3.75, "tokens": 8192, "front": True},
            {"method": "int3_g64", "bpw": 3.5, "notes": "only here"}]
    path = tmp_path / "t.csv"
    report.write_csv(path, rows, "2026-01-01 | host | git abc")
    lines = path.read_text().splitlines()
    assert lines[0] == "# 2026-01-01 | host | git abc"
    assert lines[1] == "method,bpw,tokens,front,notes"          # every key of every row, first-seen order
    back, prov = report.read_csv(path)
    assert prov == "2026-01-01 | host | git abc"
    assert back == [{"method": "q35, g128", "bpw": 3.75, "tokens": 8192, "front": True, "notes": None},
                    {"method": "int3_g64", "bpw": 3.5, "tokens": None, "front": None, "notes": "only here"}]
    raw, _ = report.read_csv(path, convert=False)
    assert raw[0]["bpw"] == "3.75"
    with pytest.raises(ValueError, match="one line"):
        report.write_csv(path, rows, "two\nlines")
    with pytest.raises(ValueError, match="no rows"):
        report.write_csv(path, [], "p")


def test_markdown_table():
    assert report.markdown_table(["a", "b"], [[1, "x"]]) == "| a | b |\n|---|---|\n| 1 | x |"
    assert report.markdown_table(["a", "b"], [], align="lr").splitlines()[1] == "|---|---:|"


# --- statistics ------------------------------------------------------------------------------------------------------
def test_paired_identical_samples_is_no_difference():
    """One defined answer for identical inputs (a method that leaves every window's NLL unchanged): t 0, p 1."""
    x = [3.1, 2.9, 3.4, 3.0]
    r = stats.paired(x, list(x))
    assert (r["mean_diff"], r["t"], r["p"], r["n"]) == (0.0, 0.0, 1.0, 4)
    assert math.isnan(scipy_stats.ttest_rel(x, x).pvalue)          # what scipy alone would report
    # the tables' quality rows use the same test: FP32 against itself has p = 1
    from types import SimpleNamespace

    from bench.tables_report import quality_row

    base = SimpleNamespace(nll=np.array(x), ppl=20.0, bpb=1.0, total_tokens=4, seconds=0.1)
    r = {"bpw": 32.0, "rel_rmse": 0.0, "max_abs_err": 0.0, "quantize_s": 0.0}
    assert quality_row("FP32", r, base, base, "baseline")["paired_p_vs_fp32"] == 1.0
    other = SimpleNamespace(nll=np.array([3.3, 2.8, 3.9, 3.0]), ppl=21.0, bpb=1.0, total_tokens=4, seconds=0.1)
    assert quality_row("x", r, other, base, "baseline")["paired_p_vs_fp32"] == pytest.approx(
        scipy_stats.ttest_rel(other.nll, base.nll).pvalue)


def test_pareto_front_and_dominators():
    assert stats.pareto_front([(1, 5), (2, 3), (3, 4), (0.5, 9)]) == [True, True, False, True]
    assert stats.dominated_by([(1, 5), (2, 3), (3, 4), (0.5, 9)]) == [[], [], [1], []]
    # a tie in both coordinates dominates neither; equal x with lower y dominates
    assert stats.pareto_front([(1, 1), (1, 1), (1, 2)]) == [True, True, False]
    assert stats.pareto_front([]) == []



# --- README blocks ------------------------------------------------------------------------------------------------
def test_readme_block_replace_append_and_errors():
    text = "# title\n\n<!-- t:start -->\nold\n<!-- t:end -->\nafter\n"
    new = report.replace_block(text, "t", "new\n")
    assert new == "# title\n\n<!-- t:start -->\nnew\n<!-- t:end -->\nafter\n"
    assert report.replace_block(new, "t", "new") == new                      # idempotent
    with pytest.raises(ValueError, match="no block"):
        report.replace_block(text, "other", "x")
    appended = report.replace_block(text, "other", "x", append=True)
    assert appended.startswith(text) and appended.endswith("<!-- other:start -->\nx\n<!-- other:end -->\n")
    with pytest.raises(ValueError, match="unbalanced"):
        report.replace_block(text + "<!-- t:start -->\n", "t", "x")
    with pytest.raises(ValueError, match="unbalanced"):
        report.replace_block("<!-- t:end -->\n<!-- t:start -->\n", "t", "x")


def test_rewrite_readme_file(tmp_path):
    p = tmp_path / "README.md"
    p.write_text("a\n<!-- b:start -->\n1\n<!-- b:end -->\n")
    report.rewrite_readme("b", "2", path=p)
    assert p.read_text() == "a\n<!-- b:start -->\n2\n<!-- b:end -->\n"


# --- figures ------------------------------------------------------------------------------------------------------
def test_spread_keeps_order_gap_and_bounds():
    ys = [0.5, 0.51, 0.52, 0.9, 0.0]
    out = report.spread(ys, gap=0.05)
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    placed = [out[i] for i in order]
    assert all(b - a >= 0.05 - 1e-12 for a, b in zip(placed, placed[1:]))
    assert min(out) >= 0.0 and max(out) <= 1.0
    assert out[3] == 0.9 and out[4] == 0.0                                  # labels with room stay put


def test_label_collisions_detects_and_place_labels_fixes():
    plt = report.pyplot()
    xs, ys = [1.0, 1.01, 1.02, 1.03, 3.0], [1.0, 1.01, 1.0, 1.02, 2.0]
    labels = ["q35 g128 compact+imp", "q35 g192 compact+imp", "Q3_K (flat blocks)", "HQQ 3-bit g64", "int8_row"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(xs, ys)
    for x, y, s in zip(xs, ys, labels):
        ax.text(x, y, s, fontsize=8)
    assert any(p.startswith("labels overlap") for p in report.label_collisions(ax))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(xs, ys)
    ax.margins(0.3)
    report.place_labels(ax, xs, ys, labels, fontsize=8)
    assert report.label_collisions(ax) == []
    plt.close(fig)


def test_save_figure_writes_png_and_pdf(tmp_path):
    plt = report.pyplot()
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    report.add_footer(fig, "provenance " * 40)
    paths = report.save_figure(fig, tmp_path / "f")
    assert [p.name for p in paths] == ["f.png", "f.pdf"] and all(p.stat().st_size > 0 for p in paths)
    assert b"CreationDate" not in (tmp_path / "f.pdf").read_bytes()          # identical inputs, identical PDF


def _checking_save(monkeypatch, module, problems: list[str]) -> None:
    """Replace ``module.save_figure`` by one that records every label problem of every axes before saving."""
    save = module.save_figure

    def checked(fig, stem):
        problems.extend(f"{stem.name}: {p}" for ax in fig.axes for p in report.label_collisions(ax))
        return save(fig, stem)

    monkeypatch.setattr(module, "save_figure", checked)


def test_committed_results_redraw_with_legible_labels(tmp_path, monkeypatch):
    """The figures of the committed results, redrawn by --report-only from their saved files (tables: CSVs; bench:
    workers.json): every file is written and no label overlaps another, leaves its axes or covers a point."""
    from pathlib import Path

    import bench.llama.figures as llama_figures
    import bench.tables_figures as tables_figures
    from bench.llama import cli as llama_cli
    from bench.tables_report import report_only

    results = Path(__file__).resolve().parents[2] / "bench" / "results"
    problems: list[str] = []
    _checking_save(monkeypatch, tables_figures, problems)
    _checking_save(monkeypatch, llama_figures, problems)
    assert report_only(results / "tables", tmp_path / "tables") == 0
    assert llama_cli.main(["--report-only", str(results / "bench"), "--out", str(tmp_path / "bench")]) == 0
    written = {p.name for p in tmp_path.rglob("*.png")}
    assert {"ppl_vs_bpw.png", "rmse_vs_bpw.png", "memory_vs_size.png", "encoding.png", "quality_vs_latency.png",
            "quality_vs_memory.png"} <= written
    assert problems == []
