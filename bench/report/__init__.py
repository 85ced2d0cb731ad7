"""Reporting shared by every bench script (tables, the end-to-end benchmark, the projection, the GEMV benchmark).

One implementation of each: CSV with a provenance line (:func:`write_csv` / :func:`read_csv`), markdown and
LaTeX tables (:func:`markdown_table`, :func:`latex_table`, :func:`latex_escape`), figure saving and label
placement (:func:`save_figure`, :func:`place_labels`, :func:`add_footer`), rewriting the generated blocks of the
docs/ pages (:func:`replace_block`, :func:`rewrite_block`, :data:`PAGES`), the Pareto front and the statistics
(:mod:`bench.report.stats`: summaries, Welch and paired t-tests, Cohen's d).
"""
from .figures import (add_footer, distinct_styles, label_collisions, label_lines_right, place_labels, pyplot,
                      save_figure, spread)
from .readme import DOCS, PAGES, README, markers, page_of, replace_block, rewrite_block, rewrite_readme
from .stats import ci95, cohens_d, dominated_by, paired, pareto_front, relative_change, summarize, welch
from .tabular import latex_escape, latex_table, markdown_table, read_csv, write_csv

__all__ = ["add_footer", "distinct_styles", "label_collisions", "label_lines_right", "place_labels", "spread", "pyplot", "save_figure", "README", "DOCS", "PAGES", "page_of", "markers", "replace_block",
           "rewrite_block", "rewrite_readme",
           "ci95", "cohens_d", "dominated_by", "paired", "pareto_front", "relative_change", "summarize", "welch",
           "latex_escape", "latex_table", "markdown_table", "read_csv", "write_csv"]
