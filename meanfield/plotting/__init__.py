"""Figures for papers. Importing this subpackage imports matplotlib (``import meanfield`` does not)."""

from .style import PAPER_STYLE, paper_style, provenance, save_figure

__all__ = ["PAPER_STYLE", "paper_style", "provenance", "save_figure"]
