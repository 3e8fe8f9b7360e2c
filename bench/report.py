#!/usr/bin/env python3
"""Renders a bnorm-bench JSON file (Google Benchmark --benchmark_out) as a markdown
table and a PNG chart. Run by scripts/bench-report; standard library only, except
matplotlib for the chart (skipped with a note when it is missing).

Rows are named "<op>/<impl>/<shape>" and labelled "<role>;<where>[;<oneDNN impl>]"
(see bench/common.h). With repetitions, the median aggregate is used. Several JSON
files (scripts/bench-report runs one process per shape) are read as one run: the first
file's context, every file's rows.
"""

import argparse
import json
import math
import os
import sys

OP_TITLES = {
    "apply": "Inference apply, parameters folded once (the engine's path), 8 B/element",
    "inference": "Inference from running statistics (fold + apply per call, as oneDNN), "
    "8 B/element",
    "inference_relu": "Inference + ReLU, 8 B/element",
    "inference_relu6": "Inference + ReLU6 (clamp), 8 B/element",
    "training_forward": "Training forward, 12 B/element",
    "training_backward": "Training backward, 20 B/element",
}
OP_ORDER = list(OP_TITLES)
DNN_OP = {"apply": "inference"}
WHERE_NOTE = {"L1": "L1", "L2": "L2", "LLC": "LLC", "DRAM": "**DRAM**"}


def read_runs(paths):
    """One Google Benchmark document from several: the first context, all rows."""
    data = None
    for path in paths:
        with open(path) as f:
            part = json.load(f)
        if data is None:
            data = part
        else:
            data.setdefault("benchmarks", []).extend(part.get("benchmarks", []))
    return data or {}


def load(paths):
    data = read_runs(paths)
    ctx = data.get("context", {})
    rows = {}  # (op, impl, shape) -> dict
    reps = {}
    shapes, roles = [], {}
    for b in data.get("benchmarks", []):
        run = b.get("run_name", b["name"])
        parts = run.split("/")
        if len(parts) < 3:
            continue
        op, impl, shape = parts[0], parts[1], parts[2]
        key = (op, impl, shape)
        label = (b.get("label") or "").split(";")
        if shape not in roles:
            shapes.append(shape)
            roles[shape] = label[0] if label else ""
        entry = rows.setdefault(key, {"where": label[1] if len(label) > 1 else "",
                                      "impl_note": label[2] if len(label) > 2 else "",
                                      "error": None, "gbs": None, "gelem": None})
        if b.get("error_occurred"):
            entry["error"] = b.get("error_message", "error")
            continue
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                entry["gbs"] = b["bytes_per_second"] / 1e9
                entry["gelem"] = b.get("Gelem")
                entry["median"] = True
            elif b.get("aggregate_name") == "max":  # bnorm's rows: the best repetition
                entry["best_gbs"] = b["bytes_per_second"] / 1e9
            continue
        reps.setdefault(key, []).append(b)
    for key, runs in reps.items():
        entry = rows[key]
        if entry.get("median"):
            continue
        gbs = sorted(r["bytes_per_second"] / 1e9 for r in runs)
        gel = sorted(r.get("Gelem", 0.0) for r in runs)
        entry["gbs"] = gbs[len(gbs) // 2]
        entry["gelem"] = gel[len(gel) // 2]
        entry["best_gbs"] = gbs[-1]
    return data, ctx, rows, shapes, roles


def bnorm_columns(ctx, rows):
    tables = ctx.get("bnorm_tables", "").split(" (")[0]
    tables = [t.strip() for t in tables.split(",") if t.strip()]
    seen = {k[1] for k in rows}
    cols = []
    for t in tables:
        for layout in ("nchw", "nhwc"):
            impl = "bnorm-%s-%s" % (t, layout)
            if impl in seen:
                cols.append(impl)
    return cols


def bnorm_title(impl):
    """A bnorm column as the tables and the chart name it: "bnorm-avx2-nhwc-2t" ->
    "avx2 nhwc 2t"."""
    return impl[len("bnorm-"):].replace("-", " ")


def onednn_columns(rows):
    order = ["nchw", "nhwc", "nChw8c", "nChw16c"]
    seen = {k[1] for k in rows if k[1].startswith("onednn-")}
    return ["onednn-" + f for f in order if "onednn-" + f in seen]


def fmt_gbs(v):
    if v is None:
        return "–"
    return "%.1f" % v if v >= 10 else "%.2f" % v


def fmt_ratio(v):
    return "–" if v is None else "%.2f" % v


def geomean(values):
    values = [v for v in values if v and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def header(ctx, args):
    mode = ctx.get("bnorm_mode", "?")
    llc = int(ctx.get("bnorm_llc_bytes", "0") or 0)
    l2 = int(ctx.get("bnorm_l2_bytes", "0") or 0)
    l1 = int(ctx.get("bnorm_l1_bytes", "0") or 0)
    load = ", ".join("%.2f" % x for x in ctx.get("load_avg", []))
    offset = int(ctx.get("bnorm_tensor_offset_bytes", "0") or 0)
    lines = [
        "Measured %s (%s run) on %s (%s; %s CPUs; L1d %s, L2 %s, LLC %s), "
        "bnorm %s at commit %s (%s), oneDNN %s. Load average at start: %s.%s"
        % (ctx.get("date", "?"), mode, ctx.get("cpu_model", "?"),
           ctx.get("cpu_features", "?"), ctx.get("num_cpus", "?"), size(l1), size(l2),
           size(llc), ctx.get("bnorm_version", "?"), args.commit or "?",
           ctx.get("bnorm_build", "?"), ctx.get("onednn", "not built"), load or "?",
           " Tensors %d bytes past a page (BNORM_BENCH_OFFSET)." % offset if offset else ""),
        "",
        "GB/s = 10^9 bytes per second of minimal traffic (inference 8 bytes per element, "
        "training forward 12, backward 20; memcpy and the streaming copy 8), from thread "
        "CPU time, one thread%s. Elements per ns = GB/s / bytes per element. bnorm cells: "
        "`GB/s (x memcpy, x best oneDNN)`, both ratios of GB/s on the same shape. "
        "*where*: the smallest cache that holds the operation's tensors "
        "(x and y; backward x, dy and dx), or **DRAM** when even the LLC does not. "
        "`–`: no such row (oneDNN has no fused clamp; training needs N x H x W >= 2)."
        % (", median of %s repetitions run in random order with the shape's other rows"
           % args.repetitions if args.repetitions > 1 else ""),
    ]
    return lines


def size(b):
    if b >= 1 << 20:
        return "%g MiB" % (b / (1 << 20))
    return "%g KiB" % (b / 1024)


def markdown(ctx, rows, shapes, roles, args):
    out = ["# bnorm benchmark: %s run" % ctx.get("bnorm_mode", "?"), ""]
    out += header(ctx, args)
    out += ["", "| shape | what | elements | MiB per tensor |", "|---|---|---:|---:|"]
    for s in shapes:
        dims = [int(x) for x in s.split("x")]
        n = math.prod(dims)
        out.append("| %s | %s | %d | %.3g |" % (s, roles[s], n, n * 4 / (1 << 20)))
    bcols = bnorm_columns(ctx, rows)
    dcols = onednn_columns(rows)
    copy_cols = [c for c in ("memcpy", "stream-copy") if ("copy", c, shapes[0]) in rows]
    summary = []
    for op in OP_ORDER:
        if not any(k[0] == op for k in rows):
            continue
        out += ["", "## " + OP_TITLES[op], ""]
        cols = copy_cols + dcols + bcols
        names = ["memcpy" if c == "memcpy" else "stream copy" if c == "stream-copy"
                 else "oneDNN " + c[7:] if c.startswith("onednn-")
                 else bnorm_title(c) for c in cols]
        out.append("| shape | where | " + " | ".join(names) + " |")
        out.append("|---|---|" + "---:|" * len(cols))
        ratios = {c: ([], [], [], []) for c in bcols}  # mem in, mem out, dnn in, dnn out
        for s in shapes:
            mem = rows.get(("copy", "memcpy", s), {}).get("gbs")
            # oneDNN has no pre-folded form: the apply rows compare with its inference.
            dnn_op = DNN_OP.get(op, op)
            dnn = [rows.get((dnn_op, c, s), {}).get("gbs") for c in dcols]
            dnn = [v for v in dnn if v]
            best = max(dnn) if dnn else None
            where = ""
            cells = []
            for c in cols:
                r = rows.get(("copy" if c in copy_cols else dnn_op if c in dcols else op,
                              c, s))
                if r and not where and c not in copy_cols:
                    where = r["where"]
                if not r or r["gbs"] is None:
                    cells.append("–" if not r or not r["error"] else "error")
                    continue
                v = r["gbs"]
                if c in bcols:
                    rm = v / mem if mem else None
                    rd = v / best if best else None
                    out_of_cache = r["where"] == "DRAM"
                    if rm:
                        ratios[c][1 if out_of_cache else 0].append(rm)
                    if rd:
                        ratios[c][3 if out_of_cache else 2].append(rd)
                    cells.append("%s (%s, %s)" % (fmt_gbs(v), fmt_ratio(rm), fmt_ratio(rd)))
                else:
                    cells.append(fmt_gbs(v))
            if not where:
                where = rows.get(("copy", "memcpy", s), {}).get("where", "")
            out.append("| %s | %s | %s |" % (s, WHERE_NOTE.get(where, where), " | ".join(cells)))
        for c in bcols:
            g = [geomean(x) for x in ratios[c]]
            summary.append((op, bnorm_title(c), g))
    out += threads_table(rows, shapes)
    if summary:
        out += ["", "## Summary: geometric means of the ratios", "",
                "| operation | bnorm | x memcpy, in cache | x memcpy, DRAM "
                "| x best oneDNN, in cache | x best oneDNN, DRAM |",
                "|---|---|---:|---:|---:|---:|"]
        for op, name, g in summary:
            out.append("| %s | %s | %s |" % (op, name, " | ".join(fmt_ratio(v) for v in g)))
    notes = sorted({(k[1], rows[k]["impl_note"]) for k in rows if rows[k]["impl_note"]})
    if notes:
        impls = {}
        for impl, note in notes:
            impls.setdefault(impl, set()).add(note)
        out += ["", "oneDNN implementations chosen: " + "; ".join(
            "%s: %s" % (i[7:], ", ".join(sorted(n))) for i, n in impls.items()) + "."]
    errors = sorted({"%s: %s" % ("/".join(k), r["error"]) for k, r in rows.items()
                     if r["error"]})
    if errors:
        out += ["", "Rows that failed:", ""] + ["- " + e for e in errors]
    return "\n".join(out) + "\n"


def threads_table(rows, shapes):
    """The -2t rows (two threads through the OpenMP adapter, wall time) next to the
    same call on one thread: its -1t row (a pool of one thread, wall time) where the
    suite has one, else the serial row (thread CPU time). Speedups of the medians and
    of the best repetitions."""
    two = sorted({(k[0], k[1]) for k in rows if k[1].endswith("-2t")},
                 key=lambda k: (OP_ORDER.index(k[0]) if k[0] in OP_ORDER else 99, k[1]))
    if not two:
        return []
    out = ["", "## Two threads (OpenMP adapter), speedup over one thread", "",
           "Two-thread rows are timed in wall-clock time; one thread is the -1t row "
           "(a pool of one thread, wall-clock time) where there is one (training), else "
           "the serial row in thread CPU time (so the speedup is if anything low). "
           "*best*: the best repetition of each row. On a virtual machine whose host "
           "takes the second vCPU away at times, the medians count those times and "
           "the best repetitions show what two cores do.", "",
           "| operation | bnorm | shape | 1 thread GB/s | 2 threads GB/s | speedup "
           "| best 1 thread | best 2 threads | best speedup |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for op, impl in two:
        one = impl[:-3]
        for s in shapes:
            e2 = rows.get((op, impl, s), {})
            e1 = rows.get((op, one + "-1t", s), rows.get((op, one, s), {}))
            r2, r1 = e2.get("gbs"), e1.get("gbs")
            if r2 is None or r1 is None:
                continue
            b2, b1 = e2.get("best_gbs"), e1.get("best_gbs")
            best = ("%s | %s | %.2f" % (fmt_gbs(b1), fmt_gbs(b2), b2 / b1)
                    if b1 and b2 else "– | – | –")
            out.append("| %s | %s | %s | %s | %s | %.2f | %s |" % (
                op, bnorm_title(one), s, fmt_gbs(r1), fmt_gbs(r2), r2 / r1, best))
    return out


def chart(ctx, rows, shapes, path, args):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: matplotlib is missing, no chart (apt-get install "
              "python3-matplotlib)", file=sys.stderr)
        return False
    bcols = bnorm_columns(ctx, rows)
    dcols = onednn_columns(rows)
    ops = [op for op in OP_ORDER if any(k[0] == op for k in rows)]
    series = [("memcpy", "#7f7f7f"), ("stream copy", "#c7c7c7"),
              ("oneDNN (best format)", "#d62728")]
    palette = ["#1f77b4", "#aec7e8", "#2ca02c", "#98df8a", "#9467bd", "#c5b0d5"]
    series += [(bnorm_title(c), palette[i % len(palette)])
               for i, c in enumerate(bcols)]
    fig, axes = plt.subplots(len(ops), 1, figsize=(16, 3.8 * len(ops)), squeeze=False)
    width = 0.8 / len(series)
    for ax, op in zip(axes[:, 0], ops):
        for si, (name, color) in enumerate(series):
            ys = []
            for s in shapes:
                if si == 0:
                    v = rows.get(("copy", "memcpy", s), {}).get("gbs")
                elif si == 1:
                    v = rows.get(("copy", "stream-copy", s), {}).get("gbs")
                elif si == 2:
                    vals = [rows.get((op, c, s), {}).get("gbs") for c in dcols]
                    vals = [x for x in vals if x]
                    v = max(vals) if vals else None
                else:
                    v = rows.get((op, bcols[si - 3], s), {}).get("gbs")
                ys.append(v if v else float("nan"))
            xs = [i + (si - (len(series) - 1) / 2) * width for i in range(len(shapes))]
            ax.bar(xs, ys, width, label=name, color=color)
        ax.set_yscale("log")
        ax.set_ylabel("GB/s")
        ax.set_title(OP_TITLES[op], loc="left", fontsize=11)
        labels = []
        for s in shapes:
            where = rows.get(("copy", "memcpy", s), {}).get("where", "")
            labels.append(s + ("\n(%s)" % where if where else ""))
        ax.set_xticks(range(len(shapes)))
        ax.set_xticklabels(labels, fontsize=8, rotation=20)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0, 0].legend(ncol=len(series), fontsize=8, loc="lower left",
                      bbox_to_anchor=(0, 1.12))
    fig.suptitle("bnorm %s run, %s, %s, commit %s" % (
        ctx.get("bnorm_mode", "?"), ctx.get("date", "?")[:10], ctx.get("cpu_model", "?"),
        args.commit or "?"), fontsize=12, y=0.995)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return True


README_BEGIN = "<!-- bench-report:begin -->"
README_END = "<!-- bench-report:end -->"


def update_readme(path, md, png):
    """Puts the chart and the tables between the markers, headings one level down."""
    with open(path) as f:
        text = f.read()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        print("report: %s has no %s ... %s block" % (path, README_BEGIN, README_END),
              file=sys.stderr)
        return 1
    lines = []
    for line in md.splitlines():
        if line.startswith("# "):
            continue
        lines.append("#" + line if line.startswith("## ") else line)
    body = "\n".join(lines).strip() + "\n"
    if png:
        rel = os.path.relpath(png, os.path.dirname(os.path.abspath(path)) or ".")
        body = "![GB/s per shape](%s)\n\n" % rel + body
    text = text[:begin + len(README_BEGIN)] + "\n" + body + text[end:]
    with open(path, "w") as f:
        f.write(text)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("json", nargs="+", help="Google Benchmark JSON output(s) of one run")
    p.add_argument("--json-out", help="write the JSON files merged into one here")
    p.add_argument("--md", help="write the markdown table here")
    p.add_argument("--png", help="write the chart here")
    p.add_argument("--commit", default="", help="the commit measured")
    p.add_argument("--repetitions", type=int, default=1)
    p.add_argument("--readme", help="replace the block between the bench-report markers "
                   "of this markdown file with the chart and the tables")
    args = p.parse_args()
    data, ctx, rows, shapes, roles = load(args.json)
    if not rows:
        print("report: no benchmark rows in %s" % " ".join(args.json), file=sys.stderr)
        return 1
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(data, f, indent=1)
    md = markdown(ctx, rows, shapes, roles, args)
    if args.md:
        with open(args.md, "w") as f:
            f.write(md)
    have_png = bool(args.png) and chart(ctx, rows, shapes, args.png, args)
    if args.readme:
        return update_readme(args.readme, md, args.png if have_png else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
