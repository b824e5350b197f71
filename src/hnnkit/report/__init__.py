"""Reports: figures, Table 1 (Markdown/HTML), provenance."""

from .figures import divergence_figure as divergence_figure
from .figures import energy_curves as energy_curves
from .figures import loss_curves as loss_curves
from .figures import rollout_panels as rollout_panels
from .provenance import provenance as provenance
from .tables import html_report as html_report
from .tables import markdown_table as markdown_table

__all__ = [
    "divergence_figure",
    "energy_curves",
    "html_report",
    "loss_curves",
    "markdown_table",
    "provenance",
    "rollout_panels",
]
