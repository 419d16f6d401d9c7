"""Binary and grey morphology with disk/ball/footprint, and remove_small_objects."""

from __future__ import annotations

__all__: list[str] = []
