"""ROS parameters <-> the config schema.

Node parameters are the schema's sections flattened with dots (``hearing.vad.threshold``), so a
``ros__parameters`` YAML file and a deployment file are validated by the same models.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def flatten(model: BaseModel | dict, prefix: str = '') -> dict[str, Any]:
    data = model.model_dump(mode='json') if isinstance(model, BaseModel) else model
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f'{prefix}.{key}' if prefix else key
        if isinstance(value, dict):
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = key.split('.')
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def ros_value(value: Any) -> Any:
    """A value a ROS parameter can hold (homogeneous lists, no None, no nested maps)."""
    if isinstance(value, list):
        if all(isinstance(v, bool) for v in value):
            return [bool(v) for v in value]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return [float(v) for v in value] if any(isinstance(v, float) for v in value) else value
        return [str(v) for v in value]
    return value
