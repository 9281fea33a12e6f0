#!/usr/bin/env python3
"""Scaling plots of `compare` results: jobsys vs rayon against the number of workers.

Usage:
    python3 benches/plot.py IN_DIR OUT_DIR

IN_DIR holds outputs of the `compare` binary named `cmp-t{T}-r{I}.md`, one per worker count T
and repetition I, e.g. made with

    for i in 1 2 3; do for t in 1 2 4 8 16; do
        ./target/release/compare --workers $t > IN_DIR/cmp-t$t-r$i.md
    done; done

For each workload and T the median over the repetitions of the jobsys and the rayon value is
taken, and OUT_DIR receives one SVG line plot per workload (x = workers T on a log2 axis,
y = time on a log axis; jobsys, rayon, and the ideal linear scaling of jobsys's T = 1 value,
or of its smallest-T value when T = 1 is missing):

    w2b.svg         W2b, 1M spawns in one scope, ns per job
    w3.svg          W3 fib join, ns per job (fib(30) below T = 8, fib(35) from T = 8: per job
                    the two sizes compare)
    w4-decls.svg    W4 parfor as one decl batch vs rayon par_chunks_mut, ms per pass
    w5-mean.svg     W5 frame, mean frame time, µs
    w6.svg          W6 skynet, ms

Python 3 standard library only. Exits non-zero if IN_DIR holds no result file.
"""

import math
import re
import statistics
import sys
from pathlib import Path
from xml.sax.saxutils import escape

FILE_RE = re.compile(r"^cmp-t(\d+)-r(\d+)\.md$")
FLOAT_RE = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def first_float(text):
    m = FLOAT_RE.search(text)
    return float(m.group()) if m else None


def after(text, label):
    """The first float after `label` in `text`."""
    i = text.find(label)
    return first_float(text[i + len(label):]) if i >= 0 else None


def mean_us(text):
    """The `mean N µs` figure of a W5 cell."""
    m = re.search(r"mean ([\d.]+) µs", text)
    return float(m.group(1)) if m else None


# What each plot reads. `row` picks a table row by its workload cell; `jobsys` / `rayon` take
# the value out of the jobsys / peer cells. W3's ms per fib(n) become ns per job, so that
# fib(30) (T < 8) and fib(35) (T >= 8) share one axis.
PLOTS = [
    {
        "file": "w2b.svg",
        "title": "W2b: 1,000,000 spawns in one scope",
        "ylabel": "ns per job",
        "row": lambda w: w.startswith("W2b "),
        "jobsys": first_float,
        "rayon": lambda c: after(c, "rayon"),
    },
    {
        "file": "w3.svg",
        "title": "W3: fib join, no cutoff",
        "ylabel": "ns per job = wall time / jobs",
        "row": lambda w: w.startswith("W3 "),
        "jobsys": first_float,
        "rayon": lambda c: after(c, "rayon::join"),
        # ms per fib(n) -> ns per job, and n for the subtitle.
        "per_job": True,
    },
    {
        "file": "w4-decls.svg",
        "title": "W4: parfor 16M f32, one decl batch vs rayon par_chunks_mut",
        "ylabel": "ms per pass",
        "row": lambda w: w.startswith("W4 ") and "one decl batch" in w,
        "jobsys": first_float,
        "rayon": lambda c: after(c, "par_chunks_mut"),
    },
    {
        "file": "w5-mean.svg",
        "title": "W5: synthetic frame, mean frame time",
        "ylabel": "mean frame time, µs",
        "row": lambda w: w.startswith("W5 frame: mean"),
        "jobsys": mean_us,
        "rayon": mean_us,
    },
    {
        "file": "w6.svg",
        "title": "W6: skynet, 1M leaves",
        "ylabel": "ms",
        "row": lambda w: w.startswith("W6 "),
        "jobsys": first_float,
        "rayon": lambda c: after(c, "rayon scope"),
    },
]


def fib_jobs(n):
    """Calls of the recursive fib(n) without cutoff: 2 * fib(n + 1) - 1."""
    a, b = 0, 1
    for _ in range(n + 1):
        a, b = b, a + b
    return 2 * a - 1


def parse_file(path):
    """{plot file: (jobsys, rayon, extra)} for one compare output."""
    out = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for plot in PLOTS:
        for line in lines:
            if not line.startswith("| ") or line.startswith("| workload"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 3 or not plot["row"](cells[0]):
                continue
            js, ry, extra = plot["jobsys"](cells[1]), plot["rayon"](cells[2]), None
            if plot.get("per_job"):
                m = re.search(r"fib\((\d+)\)", cells[0])
                if not m:
                    continue
                extra = int(m.group(1))
                scale = 1e6 / fib_jobs(extra)
                js = js * scale if js is not None else None
                ry = ry * scale if ry is not None else None
            out[plot["file"]] = (js, ry, extra)
    return out


def collect(in_dir):
    """{plot file: {T: {"jobsys": [..], "rayon": [..], "extra": set()}}}, and the files read."""
    data = {p["file"]: {} for p in PLOTS}
    files = sorted(
        (int(m.group(1)), int(m.group(2)), p)
        for p in in_dir.iterdir()
        if (m := FILE_RE.match(p.name))
    )
    for t, _rep, path in files:
        header = re.search(r"^T = (\d+) worker", path.read_text(encoding="utf-8"), re.M)
        if header and int(header.group(1)) != t:
            print(
                f"plot.py: warning: {path.name} says T = {header.group(1)}, its name T = {t}",
                file=sys.stderr,
            )
        for key, (js, ry, extra) in parse_file(path).items():
            slot = data[key].setdefault(t, {"jobsys": [], "rayon": [], "extra": set()})
            if js is not None:
                slot["jobsys"].append(js)
            if ry is not None:
                slot["rayon"].append(ry)
            if extra is not None:
                slot["extra"].add(extra)
    return data, files


# ---------------------------------------------------------------------------------------------
# SVG
# ---------------------------------------------------------------------------------------------

WIDTH, HEIGHT = 720, 460
LEFT, RIGHT, TOP, BOTTOM = 80, 190, 64, 60
COLORS = {"jobsys": "#1f77b4", "rayon": "#d62728", "ideal": "#7f7f7f"}


def fmt_num(v):
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}".rstrip("0").rstrip(".")
    if v >= 1:
        return f"{v:.2f}".rstrip("0").rstrip(".")
    return f"{v:.3g}"


def log_ticks(lo, hi):
    """Tick values for a log axis over [lo, hi]: 1-2-5 decades, finer when the range is narrow."""
    for mants in ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = []
        for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
            for m in mants:
                v = m * 10.0**e
                if lo <= v <= hi:
                    ticks.append(v)
        if len(ticks) >= 4:
            return ticks
    # A very narrow range: evenly spaced round values.
    span = hi - lo
    step = 10.0 ** math.floor(math.log10(span / 4))
    for mult in (1, 2, 5, 10):
        if span / (step * mult) <= 6:
            step *= mult
            break
    first = math.ceil(lo / step) * step
    ticks = []
    v = first
    while v <= hi * (1 + 1e-12):
        ticks.append(v)
        v += step
    return ticks


def render(plot, series, reps):
    """SVG text for one plot. `series`: {T: (jobsys median or None, rayon median or None)}."""
    ts = sorted(series)
    js = {t: v[0] for t, v in series.items() if v[0] is not None and v[0] > 0}
    ry = {t: v[1] for t, v in series.items() if v[1] is not None and v[1] > 0}

    # The ideal line: jobsys's T = 1 value (else its smallest T) divided by T / T0.
    ideal = {}
    ideal_label = None
    if js:
        t0 = 1 if 1 in js else min(js)
        ideal = {t: js[t0] * t0 / t for t in ts}
        ideal_label = "ideal (jobsys T=1 / T)" if t0 == 1 else f"ideal (jobsys T={t0} × {t0}/T)"

    values = list(js.values()) + list(ry.values()) + list(ideal.values())
    ylo, yhi = min(values), max(values)
    # Pad the y range by ~8% on each side of the log axis.
    ly0, ly1 = math.log10(ylo), math.log10(yhi)
    pad = max((ly1 - ly0) * 0.08, 0.02)
    ly0, ly1 = ly0 - pad, ly1 + pad
    lx0, lx1 = math.log2(min(ts)), math.log2(max(ts))
    if lx1 - lx0 < 1e-9:
        lx0, lx1 = lx0 - 0.5, lx1 + 0.5
    xpad = (lx1 - lx0) * 0.06
    lx0, lx1 = lx0 - xpad, lx1 + xpad

    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(t):
        return LEFT + (math.log2(t) - lx0) / (lx1 - lx0) * pw

    def py(v):
        return TOP + ph - (math.log10(v) - ly0) / (ly1 - ly0) * ph

    out = []
    add = out.append
    add(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">'
    )
    add(f"<title>{escape(plot['title'])}</title>")
    add(f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>')
    add(
        f'<text x="{LEFT + pw / 2:.1f}" y="24" text-anchor="middle" font-size="15" '
        f'font-weight="bold">{escape(plot["title"])}</text>'
    )
    sub = f"median over {reps} repetition{'s' if reps != 1 else ''} per T; lower is better"
    if plot.get("subtitle"):
        sub = plot["subtitle"] + "; " + sub
    add(
        f'<text x="{LEFT + pw / 2:.1f}" y="42" text-anchor="middle" fill="#555">'
        f"{escape(sub)}</text>"
    )

    # Plot frame and grid.
    add(
        f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>'
    )
    for t in ts:
        x = px(t)
        add(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + ph}" stroke="#e4e4e4"/>')
        add(f'<line x1="{x:.1f}" y1="{TOP + ph}" x2="{x:.1f}" y2="{TOP + ph + 5}" stroke="#333"/>')
        add(
            f'<text x="{x:.1f}" y="{TOP + ph + 19}" text-anchor="middle">{t}</text>'
        )
    for v in log_ticks(10**ly0, 10**ly1):
        y = py(v)
        add(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        add(f'<line x1="{LEFT - 5}" y1="{y:.1f}" x2="{LEFT}" y2="{y:.1f}" stroke="#333"/>')
        add(
            f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt_num(v))}</text>'
        )
    add(
        f'<text x="{LEFT + pw / 2:.1f}" y="{HEIGHT - 16}" text-anchor="middle">'
        f"workers T (log2 scale)</text>"
    )
    add(
        f'<text x="20" y="{TOP + ph / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 20 {TOP + ph / 2:.1f})">'
        f"{escape(plot['ylabel'])} (log scale)</text>"
    )

    # Lines.
    def line(points, color, dash=None, marker=None, name=""):
        pts = sorted(points.items())
        if not pts:
            return
        coords = " ".join(f"{px(t):.1f},{py(v):.1f}" for t, v in pts)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        add(
            f'<polyline points="{coords}" fill="none" stroke="{color}" '
            f'stroke-width="2"{dash_attr}/>'
        )
        for t, v in pts:
            x, y = px(t), py(v)
            tip = f"<title>{escape(name)}: T={t}, {escape(fmt_num(v))}</title>"
            if marker == "circle":
                add(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}">{tip}</circle>')
            elif marker == "square":
                add(
                    f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" '
                    f'fill="{color}">{tip}</rect>'
                )

    legend = []
    if ideal:
        line(ideal, COLORS["ideal"], dash="6 4", name="ideal")
        legend.append((ideal_label, COLORS["ideal"], "6 4", None))
    line(ry, COLORS["rayon"], marker="square", name="rayon")
    legend.append(("rayon", COLORS["rayon"], None, "square"))
    line(js, COLORS["jobsys"], marker="circle", name="jobsys")
    legend.append(("jobsys", COLORS["jobsys"], None, "circle"))

    # Legend, right of the plot.
    lx, ly = LEFT + pw + 14, TOP + 6
    add(
        f'<rect x="{lx}" y="{ly}" width="{RIGHT - 22}" height="{18 * len(legend) + 10}" '
        f'fill="white" stroke="#999"/>'
    )
    for i, (label, color, dash, marker) in enumerate(reversed(legend)):
        y = ly + 16 + 18 * i
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        add(
            f'<line x1="{lx + 8}" y1="{y}" x2="{lx + 34}" y2="{y}" stroke="{color}" '
            f'stroke-width="2"{dash_attr}/>'
        )
        if marker == "circle":
            add(f'<circle cx="{lx + 21}" cy="{y}" r="4" fill="{color}"/>')
        elif marker == "square":
            add(f'<rect x="{lx + 17}" y="{y - 4}" width="8" height="8" fill="{color}"/>')
        add(f'<text x="{lx + 40}" y="{y + 4}" font-size="11">{escape(label)}</text>')

    # Values at each T, under the legend.
    ty = ly + 18 * len(legend) + 34
    add(f'<text x="{lx}" y="{ty}" font-size="11" font-weight="bold">T: jobsys / rayon</text>')
    for i, t in enumerate(ts):
        j = fmt_num(js[t]) if t in js else "—"
        r = fmt_num(ry[t]) if t in ry else "—"
        add(
            f'<text x="{lx}" y="{ty + 15 * (i + 1)}" font-size="11">'
            f"{t}: {escape(j)} / {escape(r)}</text>"
        )
    add("</svg>")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 2
    in_dir, out_dir = Path(argv[1]), Path(argv[2])
    if not in_dir.is_dir():
        print(f"plot.py: {in_dir} is not a directory", file=sys.stderr)
        return 1
    data, files = collect(in_dir)
    if not files:
        print(f"plot.py: no cmp-t{{T}}-r{{I}}.md file in {in_dir}", file=sys.stderr)
        return 1
    out_dir.mkdir(parents=True, exist_ok=True)
    reps_per_t = {}
    for t, _rep, _path in files:
        reps_per_t[t] = reps_per_t.get(t, 0) + 1
    print(
        f"plot.py: {len(files)} files, T = {sorted(reps_per_t)}, "
        f"repetitions per T = {[reps_per_t[t] for t in sorted(reps_per_t)]}"
    )
    for plot in PLOTS:
        per_t = data[plot["file"]]
        series = {}
        for t, slot in per_t.items():
            js = statistics.median(slot["jobsys"]) if slot["jobsys"] else None
            ry = statistics.median(slot["rayon"]) if slot["rayon"] else None
            if js is not None or ry is not None:
                series[t] = (js, ry)
        if not series:
            print(f"plot.py: {plot['file']}: no data in the inputs, skipped")
            continue
        plot = dict(plot)
        if plot["file"] == "w3.svg":
            by_n = {}
            for t in sorted(series):
                for n in per_t[t]["extra"]:
                    by_n.setdefault(n, []).append(str(t))
            plot["subtitle"] = "; ".join(
                f"fib({n}) at T = {', '.join(ts)}" for n, ts in sorted(by_n.items())
            )
        reps = max(
            max(len(per_t[t]["jobsys"]), len(per_t[t]["rayon"])) for t in series
        )
        path = out_dir / plot["file"]
        path.write_text(render(plot, series, reps), encoding="utf-8")
        summary = ", ".join(
            f"T={t}: {fmt_num(j) if j else '—'}/{fmt_num(r) if r else '—'}"
            for t, (j, r) in sorted(series.items())
        )
        print(f"plot.py: wrote {path} (jobsys/rayon {summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
