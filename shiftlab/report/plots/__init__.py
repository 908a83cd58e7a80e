"""Report figures: matplotlib ``Figure`` objects rendered to inline SVG (no pyplot, no backend switch)."""
