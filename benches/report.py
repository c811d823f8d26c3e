#!/usr/bin/env python3
"""Turn benches/run.sh's raw results into the tables of benches/RESULTS.md and SVG plots.

Usage: report.py RAW_DIR BENCHES_DIR

Every figure is a ratio against a reference measured in the same invocation (the backend alone,
or HAProxy/nginx), with the median of the runs and their spread (min–max).
"""

import glob
import json
import os
import re
import statistics
import sys

RAW, BENCHES = sys.argv[1], sys.argv[2]
ROOT = os.path.dirname(os.path.abspath(BENCHES))
NAMES = {
    "none": "no proxy",
    "passthrough": "hyper pass-through",
    "mesh": "mesh proxy",
    "haproxy": "HAProxy 2.6 (nbthread 1)",
    "nginx": "nginx 1.22 (1 worker)",
}
ORDER = ["none", "passthrough", "mesh", "haproxy", "nginx"]
PCTS = ["p50", "p90", "p99", "p99.9"]


def median_spread(values):
    values = sorted(values)
    return statistics.median(values), values[0], values[-1]


def wrk_rps(path):
    with open(path) as f:
        m = re.search(r"Requests/sec:\s+([\d.]+)", f.read())
    return float(m.group(1)) if m else None


def peak(label):
    values = [wrk_rps(p) for p in glob.glob(f"{RAW}/peak-{label}-*.txt")]
    values = [v for v in values if v is not None]
    return median_spread(values) if values else None


def oha(path):
    with open(path) as f:
        data = json.load(f)
    lat = data.get("latencyPercentiles", {})
    summary = data.get("summary", {})
    codes = data.get("statusCodeDistribution", {})
    errors = data.get("errorDistribution", {})
    ok = sum(n for c, n in codes.items() if str(c).startswith("2"))
    # oha cancels the requests still in flight when -z ends ("aborted due to deadline"): those
    # are the load generator stopping, not failures of the proxy.
    bad = sum(n for c, n in codes.items() if not str(c).startswith("2")) + sum(
        n for e, n in errors.items() if "deadline" not in e
    )
    ms = {p: (lat.get(p) or 0.0) * 1000.0 for p in PCTS}
    return {"lat": ms, "ok": ok, "bad": bad, "rps": summary.get("requestsPerSec", 0.0)}


def rate_runs(label, rate):
    out = []
    for p in sorted(glob.glob(f"{RAW}/rate-{label}-{rate}-*.json")):
        if p.endswith("-warmup.json"):
            continue
        try:
            out.append(oha(p))
        except (ValueError, OSError):
            pass
    return out


def fmt_ms(v):
    return f"{v:.3f}" if v < 1 else f"{v:.2f}"


def svg_bars(path, title, labels, values, unit):
    width, bar_h, left = 640, 26, 190
    height = 40 + bar_h * len(labels) + 20
    top = max(values) if values else 1
    rows = []
    for i, (label, v) in enumerate(zip(labels, values)):
        y = 40 + i * bar_h
        w = (width - left - 90) * (v / top if top else 0)
        rows.append(
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" font-size="13">{label}</text>'
            f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="{bar_h - 8}" fill="#4a7fb5"/>'
            f'<text x="{left + w + 6:.1f}" y="{y + 17}" font-size="12">{v:,.0f} {unit}</text>'
        )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<text x="10" y="24" font-size="15" font-weight="bold">{title}</text>{"".join(rows)}</svg>'
    )
    with open(path, "w") as f:
        f.write(svg)


def svg_lines(path, title, xlabels, series, ylabel, log_y=False):
    import math

    width, height, left, bottom, top_pad = 640, 360, 70, 50, 40
    colors = ["#4a7fb5", "#d9822b", "#2f9e44", "#c92a2a", "#7048e8", "#868e96"]
    all_v = [v for _, vs in series for v in vs if v is not None and v > 0]
    if not all_v:
        return
    lo, hi = min(all_v), max(all_v)
    tr = (lambda v: math.log10(v)) if log_y else (lambda v: v)
    lo_t, hi_t = tr(lo) if log_y else 0.0, tr(hi)
    if hi_t == lo_t:
        hi_t = lo_t + 1
    plot_w, plot_h = width - left - 160, height - bottom - top_pad

    def xy(i, v):
        x = left + (plot_w * i / max(1, len(xlabels) - 1))
        y = top_pad + plot_h - plot_h * (tr(v) - lo_t) / (hi_t - lo_t)
        return x, y

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="24" font-size="15" font-weight="bold">{title}</text>',
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}" stroke="#333"/>',
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}" stroke="#333"/>',
        f'<text x="14" y="{top_pad + plot_h / 2}" font-size="12" transform="rotate(-90 14 {top_pad + plot_h / 2})">{ylabel}</text>',
    ]
    for i, xl in enumerate(xlabels):
        x, _ = xy(i, lo)
        parts.append(f'<text x="{x}" y="{top_pad + plot_h + 18}" text-anchor="middle" font-size="12">{xl}</text>')
    for frac in (0, 0.5, 1):
        v_t = lo_t + (hi_t - lo_t) * frac
        v = 10**v_t if log_y else v_t
        y = top_pad + plot_h - plot_h * frac
        parts.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end" font-size="11">{v:.3g}</text>')
    for k, (name, vs) in enumerate(series):
        color = colors[k % len(colors)]
        pts = [xy(i, v) for i, v in enumerate(vs) if v is not None and v > 0]
        if len(pts) > 1:
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in pts)}"/>'
            )
        for x, y in pts:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>')
        ly = top_pad + 16 * k
        parts.append(f'<rect x="{left + plot_w + 14}" y="{ly}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{left + plot_w + 30}" y="{ly + 9}" font-size="12">{name}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("".join(parts))


def criterion_median(path):
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def main():
    os.makedirs(f"{BENCHES}/plots", exist_ok=True)
    machine = open(f"{RAW}/machine.txt").read().strip().splitlines()
    meta = dict(line.split(": ", 1) for line in machine if ": " in line)
    proxies = [p for p in ORDER if glob.glob(f"{RAW}/peak-{p}-*.txt")]
    rates = sorted({int(m.group(1)) for p in glob.glob(f"{RAW}/rate-*.json") if (m := re.search(r"rate-[a-z0-9]+-(\d+)-\d+\.json$", p))})
    out = ["<!-- run.sh begin: generated by benches/report.py from benches/results/raw; do not edit by hand -->", ""]
    out.append("## S2–S5 — `mesh proxy` side by side with HAProxy and nginx")
    out.append("")
    out.append(f"Command: `{meta.get('command', 'benches/run.sh')}` (at {meta.get('mesh', '?')}, {meta.get('date', '?')}).")
    out.append("")
    out.append(f"Machine: {meta.get('cpu', '?')}, kernel {meta.get('kernel', '?')}; {meta.get('rustc', '')}; "
               f"{meta.get('haproxy', '')}; {meta.get('nginx', '')}; {meta.get('wrk', '')}; {meta.get('oha', '')}.")
    out.append("Each proxy runs alone on CPU 0 (one thread / worker); the backend (`bench_backend`, hyper, 1 KB "
               "bodies) and the load generators share CPU 1. Keep-alive on both sides, 16 connections. Peak: "
               "wrk, closed loop. Fixed rates: oha, open loop, `--latency-correction` (coordinated omission). "
               "Medians of the runs, spread min–max in brackets. *failed* counts non-2xx answers and "
               "connection errors (not the requests oha cancels when its time is up).")
    out.append("")

    # S2 peak
    peaks = {p: peak(p) for p in proxies}
    out.append("### S2 — peak requests per second")
    out.append("")
    out.append("| proxy | rps (median) | spread | vs HAProxy | vs nginx | vs no proxy |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for p in proxies:
        if not peaks[p]:
            continue
        med, lo, hi = peaks[p]
        ratio = lambda ref: f"{med / peaks[ref][0]:.2f}×" if peaks.get(ref) else "–"
        out.append(f"| {NAMES[p]} | {med:,.0f} | {lo:,.0f}–{hi:,.0f} | {ratio('haproxy')} | {ratio('nginx')} | {ratio('none')} |")
    out.append("")
    svg_bars(f"{BENCHES}/plots/peak_rps.svg", "Peak rps, one core per proxy (wrk, 16 connections)",
             [NAMES[p] for p in proxies if peaks[p]], [peaks[p][0] for p in proxies if peaks[p]], "rps")
    out.append("![peak rps](plots/peak_rps.svg)")
    out.append("")

    # S2 latency
    out.append("### S2 — latency added at fixed rates (ms, proxy minus no proxy, medians)")
    out.append("")
    base = {r: rate_runs("none", r) for r in rates}
    for rate in rates:
        out.append(f"**{rate} rps**")
        out.append("")
        out.append("| proxy | p50 | p90 | p99 | p99.9 | added p99 | failed |")
        out.append("|---|---:|---:|---:|---:|---:|---:|")
        base_p = {q: statistics.median([r["lat"][q] for r in base[rate]]) for q in PCTS} if base[rate] else None
        for p in proxies:
            runs = rate_runs(p, rate)
            if not runs:
                continue
            med = {q: statistics.median([r["lat"][q] for r in runs]) for q in PCTS}
            spread = [r["lat"]["p99"] for r in runs]
            failed = sum(r["bad"] for r in runs)
            added = f"{med['p99'] - base_p['p99']:+.3f} [{min(spread) - base_p['p99']:+.3f}…{max(spread) - base_p['p99']:+.3f}]" if base_p else "–"
            out.append(f"| {NAMES[p]} | {fmt_ms(med['p50'])} | {fmt_ms(med['p90'])} | {fmt_ms(med['p99'])} | "
                       f"{fmt_ms(med['p99.9'])} | {added if p != 'none' else '–'} | {failed} |")
        out.append("")
    if 1000 in rates:
        series = []
        for p in proxies:
            runs = rate_runs(p, 1000)
            if runs:
                series.append((NAMES[p], [statistics.median([r["lat"][q] for r in runs]) for q in PCTS]))
        svg_lines(f"{BENCHES}/plots/latency_1000rps.svg", "Latency percentiles at 1000 rps (oha, corrected)",
                  PCTS, series, "ms", log_y=True)
        out.append("![latency at 1000 rps](plots/latency_1000rps.svg)")
        out.append("")

    # S3
    out.append("### S3 — route scaling")
    out.append("")
    s3 = {p: peak(f"s3-{p}") for p in ("mesh", "mesh10k")}
    rss = {}
    if os.path.exists(f"{RAW}/rules-rss.txt"):
        for line in open(f"{RAW}/rules-rss.txt"):
            name, kb = line.split()
            rss[name] = int(kb)
    if s3["mesh"] and s3["mesh10k"]:
        out.append("| rules in the VirtualService | peak rps (median) | spread | vs 10 rules | RSS |")
        out.append("|---:|---:|---:|---:|---:|")
        for p, n in (("mesh", 10), ("mesh10k", 10000)):
            med, lo, hi = s3[p]
            out.append(f"| {n:,} | {med:,.0f} | {lo:,.0f}–{hi:,.0f} | {med / s3['mesh'][0]:.2f}× | {rss.get(p, 0) / 1024:.1f} MB |")
        if "mesh" in rss and "mesh10k" in rss:
            out.append("")
            out.append(f"Memory per rule (RSS difference / 9,990 rules, each rule a prefix and a header match): "
                       f"{(rss['mesh10k'] - rss['mesh']) * 1024 / 9990:,.0f} bytes.")
        out.append("")
    sizes = [10, 100, 1000, 10000]
    lookup = []
    for kind in ("exact", "prefix", "header", "regex"):
        vs = [criterion_median(f"{ROOT}/target/criterion/route_lookup_{kind}/worst/{n}/new/estimates.json") for n in sizes]
        if any(v is not None for v in vs):
            lookup.append((kind, vs))
    if lookup:
        svg_lines(f"{BENCHES}/plots/lookup_vs_rules.svg", "Route lookup time vs rules (last rule matches)",
                  [f"{n:,}" for n in sizes], lookup, "ns")
        out.append("Lookup time per rule count (criterion, `cargo bench -p mesh-core --bench route_lookup`; "
                   "table in *Route lookup* above):")
        out.append("")
        out.append("![lookup vs rules](plots/lookup_vs_rules.svg)")
        out.append("")

    # S4
    out.append("### S4 — resources at 1000 rps (from /proc, whole process tree; a process that ran 20, 200 and 1000 rps only)")
    out.append("")
    if os.path.exists(f"{RAW}/resources.txt"):
        out.append("| proxy | vCPU per 1000 rps (all runs) | per run | peak RSS | vs HAProxy (CPU) | vs nginx (CPU) |")
        out.append("|---|---:|---:|---:|---:|---:|")
        # One line per 1000-rps run: CPU time summed over the runs (ticks are 10 ms: one 5 s
        # run alone is too coarse), peak RSS the largest seen.
        runs = {}
        for line in open(f"{RAW}/resources.txt"):
            name, ticks, hz, duration, kb = line.split()
            runs.setdefault(name, []).append((int(ticks) / int(hz), float(duration), int(kb) / 1024))
        res = {name: (sum(r[0] for r in rs) / sum(r[1] for r in rs), max(r[2] for r in rs),
                      min(r[0] / r[1] for r in rs), max(r[0] / r[1] for r in rs), len(rs))
               for name, rs in runs.items()}
        for p in proxies:
            if p not in res:
                continue
            cpu, mb, low, high, n = res[p]
            r = lambda ref: f"{cpu / res[ref][0]:.2f}×" if ref in res and res[ref][0] else "–"
            out.append(f"| {NAMES[p]} | {cpu:.3f} | {low:.3f}–{high:.3f} ({n} run{'s' if n != 1 else ''}) | {mb:.1f} MB | {r('haproxy')} | {r('nginx')} |")
        out.append("")
        out.append("Istio 1.24 publishes 0.20 vCPU and 60 MB per 1000 rps for its Envoy sidecar (different "
                   "hardware; for scale only).")
        out.append("")

    # S5
    out.append("### S5 — reload every second under 1000 rps")
    out.append("")
    reloads = {}
    if os.path.exists(f"{RAW}/reloads.txt"):
        for line in open(f"{RAW}/reloads.txt"):
            parts = line.split()
            if parts:
                reloads[parts[0]] = parts[1] if len(parts) > 1 else "?"
    rows = []
    for p in ("mesh", "haproxy", "nginx"):
        steady, reload = rate_runs(f"s5-steady-{p}", 1000), rate_runs(f"s5-reload-{p}", 1000)
        if steady and reload:
            s, r = steady[0], reload[0]
            rows.append(f"| {NAMES[p]} | {reloads.get(p, '?')} | {r['bad']} of {r['ok'] + r['bad']} | "
                        f"{fmt_ms(s['lat']['p99'])} | {fmt_ms(r['lat']['p99'])} | {r['lat']['p99'] / s['lat']['p99']:.2f}× |")
    if rows:
        out.append("| proxy | reloads | failed requests | p99 steady | p99 reloading | ratio |")
        out.append("|---|---:|---:|---:|---:|---:|")
        out.extend(rows)
        out.append("")
        out.append("mesh: the VirtualService file is rewritten and the proxy gets SIGHUP (re-read, re-validated, swapped); "
                   "HAProxy: master-worker `USR2`; nginx: `nginx -s reload`.")
        out.append("")
    out.append("<!-- run.sh end -->")

    path = f"{BENCHES}/RESULTS.md"
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    block = "\n".join(out)
    if "<!-- run.sh begin" in text:
        text = re.sub(r"<!-- run.sh begin.*?<!-- run.sh end -->", lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
