"""The paper style sheet and provenance-stamped figure saving.

``save_figure`` writes PNG/PDF/SVG with Type-42 (TrueType) fonts in PDF and the
package version and the parameters that produced the figure embedded in every
file's metadata, so that a figure found in a paper's source tree can be traced
back to the command that made it.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import matplotlib

from .. import __version__

PAPER_STYLE = str(resources.files("meanfield").joinpath("paper.mplstyle"))
"""Path of the shipped style sheet; use with ``plt.style.use(meanfield.plotting.PAPER_STYLE)``."""

SUPPORTED_FORMATS = ("png", "pdf", "svg")


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """Context manager that applies the paper style sheet (Type-42 fonts, serif mathtext)."""
    import matplotlib.pyplot as plt

    with plt.style.context(PAPER_STYLE):
        yield


def provenance(**parameters: Any) -> dict[str, Any]:
    """Provenance record: package version, UTC time and the given parameters."""
    return {
        "software": f"meanfield {__version__}",
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "parameters": {k: _plain(v) for k, v in parameters.items()},
    }


def _plain(v: Any) -> Any:
    try:
        import numpy as np

        if isinstance(v, np.ndarray):
            return v.tolist()
        if isinstance(v, np.generic):
            return v.item()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def check_formats(formats: Iterable[str] | str) -> tuple[str, ...]:
    """Validate an iterable (or comma-separated string) of output formats."""
    from .._validation import InvalidArgumentError

    if isinstance(formats, str):
        formats = [f for f in formats.split(",")]
    out = []
    for f in formats:
        f = f.strip().lower().lstrip(".")
        if not f:
            continue
        if f not in SUPPORTED_FORMATS:
            raise InvalidArgumentError("format", f"unknown figure format {f!r}; choose from {', '.join(SUPPORTED_FORMATS)}")
        if f not in out:
            out.append(f)
    if not out:
        raise InvalidArgumentError("format", "no figure format given")
    return tuple(out)


def save_figure(fig: "matplotlib.figure.Figure", stem: str | os.PathLike, formats: Iterable[str] | str = ("png", "pdf"),
                prov: Mapping[str, Any] | None = None) -> list[Path]:
    """Save ``fig`` as ``stem.<fmt>`` for each format, with provenance metadata.

    Files are written to a temporary name first and renamed into place, so an
    interrupted run never leaves a truncated figure.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    stem : path-like
        Output path without extension (``out/phase-tanh``).
    formats : iterable of str or str
        Any of ``png``, ``pdf``, ``svg`` (a comma-separated string is accepted).
    prov : mapping, optional
        Provenance from :func:`provenance`; embedded as JSON in each file's metadata
        (PNG text chunk ``Description``, PDF ``Subject``/``Keywords``, SVG ``Description``).

    Returns
    -------
    list of pathlib.Path
        The written files.
    """
    formats = check_formats(formats)
    prov = dict(prov or provenance())
    desc = json.dumps(prov, sort_keys=True)
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = stem.with_name(stem.name + "." + fmt)
        tmp = path.with_name("." + path.name + ".part")
        if fmt == "png":
            md = {"Software": prov.get("software", f"meanfield {__version__}"), "Description": desc}
        elif fmt == "pdf":
            md = {"Creator": f"meanfield {__version__}", "Subject": desc, "Keywords": "meanfield provenance"}
        else:
            md = {"Creator": f"meanfield {__version__}", "Description": desc}
        with matplotlib.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
            fig.savefig(tmp, format=fmt, metadata=md)
        os.replace(tmp, path)
        written.append(path)
    return written
