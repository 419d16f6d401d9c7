"""Edges and derivatives: Sobel/Scharr/Prewitt, Laplace, gradient magnitude, LoG, DoG, Hessian."""

from __future__ import annotations

__all__: list[str] = []
