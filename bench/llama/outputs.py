"""Every output file of the end-to-end benchmark (bench/results/bench/): workers.json, CSVs with a provenance line,
sanity.txt, LaTeX tables, figures, results.md, provenance.json. `write_all` is also what --report-only reruns
on a saved workers.json."""
from __future__ import annotations

import json
from pathlib import Path

from bench import machine
from bench.report import latex_table, markdown_table, write_csv

from .figures import figures
from .precisions import DESCRIPTION, LABEL
from .probes import UNAVAILABLE
from .report import (ACC_HEAD, EFF_HEAD, SWEEP_HEAD, TR_HEAD, sanity_checks, table_rows, tables_from_results)

__all__ = ["write_all"]


def _write_latex(out: Path, tables: dict, prov: dict, pl: str) -> None:
    proto = prov["protocol"]
    base = "FP32 on CPU" if prov.get("device") == "cpu" else "FP16 on GPU"
    specs = [("accuracy", f"Perplexity ({prov.get('ppl_protocol', '')}).", ACC_HEAD),
             ("efficiency", f"Efficiency at batch 1: medians of {proto['repeats']} runs after {proto['warmup']} "
              f"warm-up; prompt {proto['prompt_len']} tokens, {proto['new_tokens']} new tokens, {proto['threads']} "
              "thread(s).", EFF_HEAD),
             ("tradeoffs", f"Relative trade-offs vs {base} (batch 1).", TR_HEAD)]
    for name, caption, head in specs:
        (out / f"{name}.tex").write_text(latex_table(head, tables[name], f"{caption} Provenance: {pl}", label=name,
                                                     align="ll" + "r" * (len(head) - 2)))


def _precision_notes(results: list[dict]) -> list[str]:
    seen = dict.fromkeys(r["precision"] for r in results)
    return [f"- {LABEL[p]}: {DESCRIPTION[p]}." for p in seen]


def _markdown(results, tables, flags, figs, prov, pl) -> str:
    proto = prov["protocol"]
    base = "FP32 on CPU" if prov.get("device") == "cpu" else "FP16 on GPU"
    energy = next((r.get("energy_status") for r in results if r.get("energy_status")), UNAVAILABLE)
    lines = [f"# End-to-end benchmark ({proto['mode']})", "", f"Machine: {pl}", "",
             f"Device: {prov.get('device')}; torch threads {proto['threads']}; load average at start/end "
             f"{prov.get('loadavg_start')} / {prov.get('loadavg_end')} (the machine is shared: other processes "
             "compete for its 2 cores, which widens the spread); total wall time of this benchmark "
             f"{prov.get('bench_wall_s', 0):.0f} s.", "",
             f"Protocol: {proto['repeats']} timed runs after {proto['warmup']} warm-up per (model, precision, batch); "
             f"prompt {proto['prompt_len']} tokens (fixed text windows / fixed random ids), {proto['new_tokens']} "
             "greedy new tokens with min_new_tokens = max_new_tokens; each (model, precision) in its own process; "
             f"peak RSS = VmHWM over the runs of that batch, reset after model preparation. Energy: {energy}.", "",
             f"Quality protocol (SmolLM2 only): {prov.get('ppl_protocol', 'n/a')}.", "",
             "synthetic-7b-width: random weights, LLaMA-7B width, few layers — speed and memory only, never quality.",
             "", "Precisions (only the block linears change; embeddings, norms and lm_head keep the model dtype):", "",
             *_precision_notes(results), "",
             "## Efficiency (batch 1)", "", markdown_table(EFF_HEAD, tables["efficiency"]),
             "", "## Accuracy", "", markdown_table(ACC_HEAD, tables["accuracy"]),
             "", f"## Trade-offs vs {base} (batch 1)", "", markdown_table(TR_HEAD, tables["tradeoffs"]),
             "", "## Batch sweep (CPU)", "", markdown_table(SWEEP_HEAD, tables["sweep"]),
             "", "## Sanity checks", "", *[f"- {f}" for f in flags],
             "", "Files: results_raw.csv (per run), results.csv (median, mean, std, CV, 95% CI), results_configs.csv, "
             "derived.csv (Welch t/p and Cohen's d from raw runs, paired NLL test), accuracy.tex, efficiency.tex, "
             "tradeoffs.tex, " + ", ".join(figs) + ", provenance.json, workers.json.", ""]
    return "\n".join(lines)


def write_all(results: list[dict], prov: dict, out: Path) -> None:
    """Every output of the benchmark into ``out`` from the workers' outputs (also what --report-only reruns)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "workers.json").write_text(json.dumps({"results": results, "provenance": prov}, default=str))
    t = tables_from_results(results)
    pl = machine.provenance_line(prov)
    for name, rows in (("results_raw", t["raw"]), ("results", t["summary"]), ("results_configs", t["configs"]),
                       ("derived", t["derived"])):
        if rows:
            write_csv(out / f"{name}.csv", rows, pl)
    flags = sanity_checks(t)
    (out / "sanity.txt").write_text("\n".join(flags) + "\n")
    tables = table_rows(t)
    _write_latex(out, tables, prov, pl)
    figs = [p.name for p in figures(t, prov, out)]
    (out / "provenance.json").write_text(json.dumps(prov, indent=1, default=str))
    (out / "results.md").write_text(_markdown(results, tables, flags, figs, prov, pl))
    print("\n".join(["sanity checks:"] + [f"  {f}" for f in flags]))
