"""Helpers for tests: a minimal TOML writer and small valid base cases."""
from __future__ import annotations

import copy
import math


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f'"{k}" = {_value(x)}' for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(data: dict) -> str:
    """Serialise nested dicts: top-level tables as [sections], everything else inline."""
    lines = []
    for key, val in data.items():
        if not isinstance(val, dict):
            lines.append(f'"{key}" = {_value(val)}')
    for key, val in data.items():
        if isinstance(val, dict):
            lines.append(f'["{key}"]')
            lines += [f'"{k}" = {_value(v)}' for k, v in val.items()]
    return "\n".join(lines) + "\n"


BASE_1D = {
    "domain": {"lower": [-4.0], "upper": [4.0], "cells": [40]},
    "target": {"kind": "gaussian_mixture", "components": [
        {"weight": 0.5, "mean": [-1.5], "std": [0.5]},
        {"weight": 0.5, "mean": [1.5], "std": [0.5]}]},
    "initial": {"kind": "gaussian", "mean": [1.0], "std": [0.5]},
    "flow": {"kind": "js"},
    "time": {"dt": 0.05, "save_times": [0.1, 0.2], "scheme": "backward-euler"},
}

BASE_2D = {
    "domain": {"lower": [-3.0, -3.0], "upper": [3.0, 3.0], "cells": [12, 12]},
    "target": {"kind": "gaussian", "mean": [0.0, 0.0], "cov": [[1.0, 0.2], [0.2, 0.8]]},
    "initial": {"kind": "gaussian_mixture", "components": [
        {"weight": 1.0, "mean": [1.0, -0.5], "std": [0.6, 0.7]}]},
    "flow": {"kind": "reverse-kl"},
    "time": {"dt": 0.05, "save_times": [0.1]},
}


def base(dim: int) -> dict:
    return copy.deepcopy(BASE_1D if dim == 1 else BASE_2D)
