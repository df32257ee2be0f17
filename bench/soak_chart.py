"""The soak's samples (bench/soak.sh) as one SVG: RSS, open files, threads, the KV
files' size and the cache's size over time, each scaled to its own maximum, with the
restart marked. No plotting library: a few polylines."""

import csv
import sys

SERIES = [
    ("rss_kib", "RSS", "#d62728", lambda v: f"{v / 1024:.0f} MiB"),
    ("fds", "open files", "#1f77b4", lambda v: f"{v:.0f}"),
    ("threads", "threads", "#2ca02c", lambda v: f"{v:.0f}"),
    ("kv_bytes", "KV files", "#9467bd", lambda v: f"{v / 1048576:.1f} MiB"),
    ("cache_bytes", "cache", "#ff7f0e", lambda v: f"{v / 1048576:.1f} MiB"),
]
W, H, LEFT, TOP, PLOT_H = 900, 420, 60, 20, 300


def main(samples_csv, out_svg):
    rows = list(csv.DictReader(open(samples_csv)))
    if not rows:
        sys.exit("no samples")
    t = [float(r["seconds"]) for r in rows]
    span = max(t) or 1
    x = lambda s: LEFT + (W - LEFT - 20) * s / span
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
        f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - 20}" height="{PLOT_H}" fill="none" stroke="#999"/>',
    ]
    # The restart: where the pid changes.
    for prev, row in zip(rows, rows[1:]):
        if prev["pid"] != row["pid"]:
            rx = x(float(row["seconds"]))
            parts.append(f'<line x1="{rx:.1f}" y1="{TOP}" x2="{rx:.1f}" y2="{TOP + PLOT_H}" stroke="#000" stroke-dasharray="4"/>')
            parts.append(f'<text x="{rx + 4:.1f}" y="{TOP + 14}">kill -9 + restart</text>')
    for i, (key, label, colour, fmt) in enumerate(SERIES):
        values = [float(r[key]) for r in rows]
        top = max(values) or 1
        points = " ".join(f"{x(s):.1f},{TOP + PLOT_H * (1 - v / top):.1f}" for s, v in zip(t, values))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        ly = TOP + PLOT_H + 30 + 16 * (i // 3)
        lx = LEFT + 280 * (i % 3)
        parts.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 14}" y="{ly}">{label} (max {fmt(top)})</text>')
    parts.append(f'<text x="{LEFT}" y="{H - 8}">seconds 0 to {span:.0f}; each line scaled to its own maximum</text>')
    parts.append("</svg>")
    open(out_svg, "w").write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
