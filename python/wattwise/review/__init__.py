"""The efficiency review: ``compare`` model variants on latency, energy, metric, size and
MACs, and report the result as a table, pandas, Markdown, HTML or JSON."""

from .compare import compare
from .report import Comparison, pareto_front

__all__ = ["Comparison", "compare", "pareto_front"]
