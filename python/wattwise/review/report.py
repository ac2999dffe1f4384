"""The result of ``wattwise.compare``: ratios, a printable table, pandas, and self-contained
Markdown/HTML/JSON reports with matplotlib figures."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

_COLUMNS = [
    ("variant", "variant", "{}"),
    ("batch", "batch", "{}"),
    ("p50_ms", "p50 ms", "{:.3f}"),
    ("p95_ms", "p95 ms", "{:.3f}"),
    ("throughput_per_s", "inf/s", "{:.1f}"),
    ("energy_j_per_inference", "J/inf", "{:.4g}"),
    ("energy_method", "energy from", "{}"),
    ("g_co2e_per_million", "gCO2e/1M inf", "{:.4g}"),
    ("metric", "metric", "{:.4f}"),
    ("params", "params", "{:,}"),
    ("nonzero_params", "non-zero", "{:,}"),
    ("size_mb", "size MB", "{:.3f}"),
    ("macs_per_inference", "MACs/inf", "{:,.0f}"),
    ("speedup", "speed-up", "{:.2f}x"),
    ("energy_ratio", "energy vs base", "{:.2f}x"),
    ("size_ratio", "size vs base", "{:.2f}x"),
]


def _fmt(value, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return pattern.format(value)


def pareto_front(points: list[tuple[str, float, float]]) -> list[str]:
    """Names of the points no other point beats on both axes: (name, cost, score) with
    lower cost and higher score better."""
    front = []
    for name, cost, score in points:
        dominated = any(
            (c <= cost and s >= score) and (c < cost or s > score) for _, c, s in points
        )
        if not dominated:
            front.append(name)
    return front


@dataclass
class Comparison:
    """Measured variants. ``rows()`` joins per-batch measurements with per-variant facts
    and ratios to the baseline; ``table()``, ``to_pandas()`` and ``save()`` present them."""

    baseline: str
    static: dict
    records: list
    timelines: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def variants(self) -> list[str]:
        return list(self.static)

    @property
    def batch_sizes(self) -> list[int]:
        return sorted({r["batch"] for r in self.records})

    def _record(self, variant: str, batch: int) -> dict:
        for r in self.records:
            if r["variant"] == variant and r["batch"] == batch:
                return r
        raise KeyError(f"no measurement for variant {variant!r} at batch {batch}")

    def rows(self) -> list[dict]:
        out = []
        for r in self.records:
            s = self.static[r["variant"]]
            base = self._record(self.baseline, r["batch"])
            base_static = self.static[self.baseline]
            e, be = r["energy_j_per_inference"], base["energy_j_per_inference"]
            out.append(
                {
                    **r,
                    "metric": s["metric"],
                    "params": s["params"],
                    "nonzero_params": s["nonzero_params"],
                    "size_mb": s["size_bytes"] / 1e6,
                    "speedup": base["p50_ms"] / r["p50_ms"] if r["p50_ms"] > 0 else None,
                    "energy_ratio": e / be if e is not None and be else None,
                    "size_ratio": s["size_bytes"] / base_static["size_bytes"],
                }
            )
        return out

    def table(self) -> str:
        """A plain-text table, one row per variant and batch size."""
        header = [title for _, title, _ in _COLUMNS]
        body = [[_fmt(row.get(k), p) for k, _, p in _COLUMNS] for row in self.rows()]
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
        lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.rjust(w) for c, w in zip(b, widths, strict=True)) for b in body]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_pandas(self):
        """The rows as a pandas DataFrame (needs pandas: ``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("Comparison.to_pandas needs pandas: pip install pandas") from exc
        return pd.DataFrame(self.rows())

    def to_dict(self) -> dict:
        return {
            "format": "wattwise.comparison/1",
            "baseline": self.baseline,
            "static": self.static,
            "records": self.records,
            "timelines": self.timelines,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Comparison:
        if not isinstance(d, dict) or d.get("format") != "wattwise.comparison/1":
            raise ValueError("not a wattwise comparison (missing format 'wattwise.comparison/1')")
        return cls(
            baseline=d["baseline"],
            static=d["static"],
            records=d["records"],
            timelines=d.get("timelines", {}),
            meta=d.get("meta", {}),
        )

    @classmethod
    def load(cls, path) -> Comparison:
        """Read a comparison saved with ``save("....json")``."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def save(self, path) -> Path:
        """Write ``.html`` (self-contained, with figures), ``.md`` or ``.json``, chosen by
        the suffix. The file appears whole or not at all."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            text = json.dumps(self.to_dict(), indent=1)
        elif suffix in (".md", ".markdown"):
            text = self.to_markdown()
        elif suffix in (".html", ".htm"):
            text = self.to_html()
        else:
            raise ValueError(f"Comparison.save: path must end in .html, .md or .json, got {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    # ---- documents ---------------------------------------------------------------------

    def _summary_lines(self) -> list[str]:
        cpu, m = self.meta.get("cpu", {}), self.meta
        lines = [
            f"Baseline: **{self.baseline}**. Machine: {cpu.get('model', '?')} "
            f"({cpu.get('logical_cpus', '?')} logical CPUs, kernel path {cpu.get('simd', '?')}), "
            f"torch {m.get('torch_version', '?')}, {m.get('torch_threads', '?')} threads; "
            f"wattwise {m.get('wattwise_version', '?')}; {m.get('date', '')}.",
        ]
        methods = sorted({r["energy_method"] for r in self.records if r["energy_method"]})
        if methods:
            ci = self.meta.get("carbon_intensity_g_per_kwh")
            src = self.meta.get("carbon_intensity_source", "")
            lines.append(
                f'Energy per inference from: {", ".join(methods)} ("estimate" means modelled '
                f"from CPU time, not read from a sensor). Carbon intensity "
                f"{ci if ci is not None else '?'} gCO2e/kWh ({src}), PUE {m.get('pue', '?')}."
            )
        return lines

    def to_markdown(self) -> str:
        keys = [k for k, _, _ in _COLUMNS]
        lines = ["# Efficiency review", "", *self._summary_lines(), ""]
        lines.append("| " + " | ".join(t for _, t, _ in _COLUMNS) + " |")
        lines.append("|" + "---|" * len(keys))
        for row in self.rows():
            lines.append("| " + " | ".join(_fmt(row.get(k), p) for k, _, p in _COLUMNS) + " |")
        front = self.pareto()
        if front:
            lines += ["", f"Pareto front (metric vs energy per inference): {', '.join(front)}."]
        return "\n".join(lines) + "\n"

    def pareto(self) -> list[str]:
        """Variants on the metric-vs-energy Pareto front at the largest batch size."""
        b = self.batch_sizes[-1]
        pts = []
        for name in self.variants:
            r = self._record(name, b)
            m = self.static[name]["metric"]
            if r["energy_j_per_inference"] is not None and m is not None:
                pts.append((name, r["energy_j_per_inference"], m))
        return pareto_front(pts)

    def figures(self) -> dict:
        """matplotlib figures keyed by title (empty figures are left out)."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        figs = {}
        b = self.batch_sizes[-1]
        colors = {n: plt.cm.tab10(i % 10) for i, n in enumerate(self.variants)}
        front = set(self.pareto())
        pts = [
            (n, self._record(n, b)["energy_j_per_inference"], self.static[n]["metric"])
            for n in self.variants
        ]
        pts = [p for p in pts if p[1] is not None and p[2] is not None]
        if pts:
            fig, ax = plt.subplots(figsize=(7, 4.5))
            fp = sorted((e, m) for n, e, m in pts if n in front)
            ax.plot(
                [e for e, _ in fp],
                [m for _, m in fp],
                "--",
                color="0.4",
                zorder=1,
                label="Pareto front",
            )
            for n, e, m in pts:
                on_front = n in front
                ax.scatter(
                    e,
                    m,
                    s=90 if on_front else 50,
                    color=colors[n],
                    zorder=2,
                    edgecolors="black" if on_front else "none",
                    label=n,
                )
            ax.set_xlabel(f"energy per inference at batch {b} (J)")
            ax.set_ylabel("metric")
            ax.legend(fontsize=7, loc="best")
            ax.grid(alpha=0.3)
            figs["Metric vs energy per inference"] = fig

        fig, ax = plt.subplots(figsize=(7, 4.5))
        width = 0.8 / max(len(self.variants), 1)
        for i, n in enumerate(self.variants):
            ys = [self._record(n, bb)["p50_ms"] for bb in self.batch_sizes]
            xs = [j + i * width for j in range(len(self.batch_sizes))]
            ax.bar(xs, ys, width=width, label=n, color=colors[n])
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(self.batch_sizes))])
        ax.set_xticklabels([f"batch {bb}" for bb in self.batch_sizes])
        ax.set_ylabel("p50 latency (ms, log scale)")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
        figs["Latency by batch size"] = fig

        if any(tl["t_s"] for tl in self.timelines.values()):
            # The measurement windows back to back, in the order they ran.
            fig, ax = plt.subplots(figsize=(9, 3.5))
            offset, seen = 0.0, set()
            for key, tl in self.timelines.items():
                if not tl["t_s"]:
                    continue
                name = key.rsplit("@", 1)[0]
                ts = [offset + t for t in tl["t_s"]]
                ax.plot(
                    ts,
                    tl["power_w"],
                    color=colors.get(name, "0.5"),
                    linewidth=1,
                    label=None if name in seen else name,
                )
                seen.add(name)
                offset = ts[-1]
            ax.set_xlabel("time across the measurement windows (s)")
            ax.set_ylabel("power (W)")
            ax.legend(fontsize=7, ncol=2)
            ax.grid(alpha=0.3)
            figs["Power timeline"] = fig

        layered = [n for n in self.variants if self.static[n]["layers"]]
        if layered:
            import numpy as np

            width = max(len(self.static[n]["layers"]) for n in layered)
            sparsity = np.full((len(layered), width), np.nan)
            bits = np.full((len(layered), width), np.nan)
            for r, n in enumerate(layered):
                for c, layer in enumerate(self.static[n]["layers"]):
                    sparsity[r, c] = layer["sparsity"]
                    bits[r, c] = layer["bits"]
            fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(layered) + 1.8))
            for ax, data, title, cmap, vmax in (
                (axes[0], sparsity, "fraction of zero weights", "Greens", 1.0),
                (axes[1], bits, "weight bit width", "Blues_r", 32),
            ):
                im = ax.imshow(data, aspect="auto", cmap=cmap, vmin=0, vmax=vmax)
                ax.set_yticks(range(len(layered)))
                ax.set_yticklabels(layered, fontsize=8)
                ax.set_xlabel("layer (Linear/Conv, in model order)")
                ax.set_title(title, fontsize=10)
                for (r, c), v in np.ndenumerate(data):
                    if not np.isnan(v):
                        ax.text(
                            c,
                            r,
                            f"{v:.2f}" if vmax == 1.0 else f"{v:.0f}",
                            ha="center",
                            va="center",
                            fontsize=6,
                        )
                fig.colorbar(im, ax=ax, fraction=0.04)
            figs["Per-layer sparsity and bit width"] = fig
        return figs

    def to_html(self) -> str:
        import matplotlib.pyplot as plt

        imgs = []
        for title, fig in self.figures().items():
            buf = io.BytesIO()
            fig.tight_layout()
            fig.savefig(buf, format="png", dpi=110)
            plt.close(fig)
            data = base64.b64encode(buf.getvalue()).decode("ascii")
            imgs.append(
                f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' "
                f"src='data:image/png;base64,{data}'>"
            )
        head = "".join(f"<th>{html.escape(t)}</th>" for _, t, _ in _COLUMNS)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(_fmt(row.get(k), p))}</td>" for k, _, p in _COLUMNS)
            + "</tr>"
            for row in self.rows()
        )
        summary = "".join(
            f"<p>{html.escape(line).replace('**', '')}</p>" for line in self._summary_lines()
        )
        front = self.pareto()
        names = html.escape(", ".join(front))
        pareto = f"<p>Pareto front (metric vs energy per inference): {names}.</p>" if front else ""
        style = (
            "body{font-family:sans-serif;margin:2em;max-width:1200px}"
            "table{border-collapse:collapse;font-size:13px}"
            "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
            "th{background:#f3f3f3}img{max-width:100%}"
        )
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>wattwise efficiency review"
            f"</title><style>{style}</style></head><body><h1>Efficiency review</h1>{summary}"
            f"<table><tr>{head}</tr>{body}</table>{pareto}{''.join(imgs)}</body></html>\n"
        )
