# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Markdown table and PNG chart of one `make bench` result (bench/results/<date>.json).

`python bench/report.py bench/results/<date>.json` rewrites the .md and .png next to it.
"""

from __future__ import annotations

import json
import os
import sys

OP_GOAL = 1.2
SHIM_GOAL_MIB = 1.0


def _s(value, unit=" s"):
    return "—" if value is None else "%.2f%s" % (value, unit)


def _x(value):
    return "—" if value is None else "%.2f×" % value


def ops_table(ops):
    lines = ["| operation | core (ms) | raw runc (ms) | core / raw | goal ≤ %.1f× |" % OP_GOAL,
             "|---|---|---|---|---|"]
    for row in ops["rows"]:
        met = "met" if row["ratio"] is not None and row["ratio"] <= OP_GOAL else "not met"
        lines.append("| %s | %.1f | %.1f | %s | %s |" % (row["op"], row["core_ms"], row["raw_ms"],
                                                         _x(row["ratio"]), met))
    lines.append("")
    lines.append("Medians of %d interleaved repetitions (after one warm-up cycle each; %s s pause before each "
                 "timed operation, on both sides). `runc run -d` on the same bundle: %.1f ms."
                 % (ops["repetitions"], ops.get("settle_s", "no"), ops["runc_run_d_ms"]))
    return lines


def converge_table(rows):
    lines = ["| N | run | container loop | containers module | podman_container loop | runc floor "
             "| loop / podman | module / podman | loop / floor | module / floor |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for kind in ("first", "rerun"):
            def cell(key):
                value = row.get("%s_%s_s" % (key, kind))
                if value is None and row.get(key + "_note"):
                    return "not run"
                return _s(value)
            lines.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                row["n"], kind, cell("loop"), cell("plural"), cell("podman"), _s(row["floor_%s_s" % kind]),
                _x(row.get("loop_%s_vs_podman" % kind)), _x(row.get("plural_%s_vs_podman" % kind)),
                _x(row.get("loop_%s_vs_floor" % kind)), _x(row.get("plural_%s_vs_floor" % kind))))
    notes = sorted({row[k] for row in rows for k in row if k.endswith("_note")})
    lines.append("")
    lines.append("Seconds of whole `ansible-playbook` runs (the floor: a bash loop of `runc run -d`, and of "
                 "`runc state` for the rerun). " + " ".join(
                     "%s: %s." % (k.split("_")[0], row[k]) for row in rows[-1:] for k in row if k.endswith("_note")))
    del notes
    return lines


def per_container_rerun(rows):
    """Per-container cost of an idempotent rerun: least-squares slope of rerun time over N (ms)."""
    out = {}
    for key in ("loop", "plural", "podman", "floor"):
        points = [(row["n"], row["%s_rerun_s" % key]) for row in rows if row.get("%s_rerun_s" % key) is not None]
        if len(points) >= 2 and len({n for n, _t in points}) > 1:
            mean_n = sum(n for n, _t in points) / float(len(points))
            mean_t = sum(t for _n, t in points) / float(len(points))
            slope = (sum((n - mean_n) * (t - mean_t) for n, t in points)
                     / sum((n - mean_n) ** 2 for n, _t in points))
            out[key] = round(slope * 1000, 1)
    return out


def write_markdown(result, path):
    lines = ["# make bench, %s" % result["date"], ""]
    host = result["host"]
    lines.append("Host: %s cores, kernel %s, %s, Python %s; load average %s at start, %s at end (the load "
                 "at the end is mostly the bench's own podman and fleet sections; a 1-minute load above the "
                 "core count at the start means a busy machine and noisy absolute numbers). Whole run: %s s." % (
                     host["nproc"], host["kernel"], host["runc"], host["python"], " ".join(host["loadavg_start"]),
                     " ".join(host.get("loadavg_end", [])), result.get("seconds")))
    lines.append("")
    if "ops" in result:
        lines += ["## 1. Per operation: core vs raw runc", ""] + ops_table(result["ops"]) + [""]
    if "converge" in result:
        lines += ["## 2. Converging N containers (ansible-playbook)", ""] + converge_table(result["converge"]) + [""]
        slopes = per_container_rerun(result["converge"])
        lines += ["## 3. Idempotent no-op", "",
                  "Per-container cost of a rerun (least-squares slope of the rerun times over N): " + ", ".join(
                      "%s %.1f ms" % (k, v) for k, v in sorted(slopes.items())) + "."]
    if "noop" in result:
        noop = result["noop"]
        lines += ["", "| rerun of %d containers | seconds | changed | runtime calls | per container | verbs "
                  "| (first run: calls per container) |" % noop["n"], "|---|---|---|---|---|---|---|"]
        for key, label in (("loop", "container loop"), ("plural", "containers module")):
            if key in noop:
                d = noop[key]
                lines.append("| %s | %.2f | %d | %d | %.2f | %s | %s |" % (
                    label, d["rerun_s"], d["changed"], d["runtime_calls"], d["calls_per_container"],
                    ", ".join("%s %d" % kv for kv in sorted(d["verbs"].items())),
                    d.get("first_run_calls_per_container", "—")))
        lines.append("")
        lines.append("Goal: at most 1 runtime call per container on that path (counted by a wrapper script "
                     "used as the runtime).")
    if "memory" in result:
        mem = result["memory"]
        lines += ["", "## 4. Memory (PSS from /proc/<pid>/smaps_rollup)", "",
                  "| process | containers | PSS per process (mean) | private per process | total PSS |",
                  "|---|---|---|---|---|"]
        for key, label in (("shim", "oci.runtime shim"), ("shim_host", "oci.runtime shim host"),
                           ("conmon", "podman conmon")):
            data = mem.get(key)
            if data:
                lines.append("| %s | %d | %.2f MiB | %.2f MiB | %.1f MiB |" % (
                    label, data["count"], data["pss_mib_mean"], data["private_mib_mean"], data["pss_mib_total"]))
        shim = mem.get("shim")
        if shim:
            host = mem.get("shim_host") or {"pss_mib_total": 0.0}
            with_host = (shim["pss_mib_total"] + host["pss_mib_total"]) / shim["count"]
            lines.append("")
            lines.append("Per container, the host's share included: %.2f MiB." % with_host)
            lines.append("Goal ≤ %.1f MiB per shim: %s." % (
                SHIM_GOAL_MIB, "met" if with_host <= SHIM_GOAL_MIB else "not met"))
    if "fleet" in result:
        fleet = result["fleet"]
        lines += ["", "## 5. Fleet (playbooks/fleet.yml)", ""]
        if fleet.get("status") == "measured":
            lines.append("| run | seconds |")
            lines.append("|---|---|")
            for key, label in (("first_s", "first converge"), ("rerun_s", "idempotent rerun"),
                               ("after_kill_s", "rerun after kill -9 of 3 containers")):
                if fleet.get(key) is not None:
                    lines.append("| %s | %.2f |" % (label, fleet[key]))
            lines.append("")
            lines.append("%s (whole script with its checks: %s s)." % (fleet.get("note", ""), fleet.get("script_s")))
        else:
            lines.append("%s%s" % (fleet.get("status"), (": " + fleet["error"]) if fleet.get("error") else ""))
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def write_chart(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = result.get("converge") or []
    if not rows:
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=False)
    for ax, kind in zip(axes, ("first", "rerun")):
        for key, label, style in (("loop", "oci.runtime.container loop", "o-"),
                                  ("plural", "oci.runtime.containers (one task)", "s-"),
                                  ("podman", "podman_container loop", "^-"),
                                  ("floor", "raw runc loop (floor)", "x--")):
            points = [(row["n"], row.get("%s_%s_s" % (key, kind))) for row in rows
                      if row.get("%s_%s_s" % (key, kind)) is not None]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], style, label=label)
        ax.set_title("first run" if kind == "first" else "idempotent rerun")
        ax.set_xlabel("containers (N)")
        ax.set_ylabel("seconds (whole ansible-playbook run)")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Converge time vs N, make bench %s" % result["date"])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_all(result, base):
    write_markdown(result, base + ".md")
    write_chart(result, base + ".png")


if __name__ == "__main__":
    source = sys.argv[1]
    with open(source) as handle:
        data = json.load(handle)
    write_all(data, os.path.splitext(source)[0])
