"""The publishing core: ingest → route → approve → schedule → deliver → report.

Never imports Textual or `tui`: the terminal UI is one client of this core among others.
"""

__version__ = "0.1.0"
