"""Offline analysis: frame sources (videos; readers registered by extension), analysis, events, report."""
