"""Intensity transforms: linear and percentile normalisation (global percentiles), CT windowing."""

from __future__ import annotations

__all__: list[str] = []
