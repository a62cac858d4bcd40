"""Validation helpers shared by every config section and by the scenario format."""
from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from voice_robot.config.errors import ConfigError, LoadedYaml, format_loc, load_yaml

M = TypeVar('M', bound=BaseModel)


class Section(BaseModel):
    """A config mapping: unknown keys are errors that list the keys allowed there."""
    model_config = ConfigDict(extra='forbid', validate_assignment=True)

    @model_validator(mode='before')
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = set(cls.model_fields)
            allowed |= {f.alias for f in cls.model_fields.values() if f.alias}
            for key in data:
                if key not in allowed:
                    raise PydanticCustomError(
                        'unknown_key', "unknown key '{key}'; expected one of: {allowed}",
                        {'key': str(key), 'allowed': ', '.join(sorted(allowed))})
        return data


def _clean_loc(loc: tuple, data: Any) -> tuple:
    """Drop the parts pydantic adds for unions/validators so the loc matches the file's keys."""
    out = []
    node = data
    for part in loc:
        if isinstance(node, dict):
            if part in node:
                out.append(part)
                node = node[part]
            continue      # a union tag such as 'circular' or 'function-after[...]'
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
            continue
        if isinstance(node, (list, dict)):
            continue
        break
    return tuple(out)


def _expectation(err: dict) -> str:
    if err['type'] == 'unknown_key':
        return err['msg']
    msg = err['msg']
    if msg.startswith('Value error, '):
        msg = msg[len('Value error, '):]
    elif msg.startswith('Assertion failed, '):
        msg = msg[len('Assertion failed, '):]
    elif msg.startswith('Input should be '):
        rest = msg[len('Input should be '):]
        if rest.startswith(('greater', 'less')):
            rest = 'a value ' + rest
        msg = 'expected ' + rest
    elif msg == 'Field required':
        msg = 'required key is missing'
    if err['type'] not in ('missing', 'unknown_key') and 'input' in err:
        shown = repr(err['input'])
        if len(shown) > 60:
            shown = shown[:57] + '...'
        msg += f' (got {shown})'
    return msg


def validation_error(exc: ValidationError, source: LoadedYaml | None, file: str | Path | None,
                     root_loc: tuple = ()) -> ConfigError:
    data = source.data if source is not None else None
    items = []
    for err in exc.errors():
        loc = tuple(err['loc'])
        loc = _clean_loc(loc, _dig(data, root_loc)) if data is not None else loc
        if err['type'] == 'unknown_key':
            loc = loc + (err['ctx']['key'],)
        full = root_loc + loc
        line = source.line_of(full) if source is not None else None
        items.append((format_loc(full), _expectation(err), line))
    items.sort(key=lambda item: (item[2] is None, item[2] or 0))
    key, expectation, line = items[0]
    more = [f'{k}: {e}' + (f' (line {ln})' if ln else '') for k, e, ln in items[1:]]
    return ConfigError(file, key, expectation, line, more)


def _dig(data: Any, loc: tuple) -> Any:
    for part in loc:
        data = data[part]
    return data


def validate(model: type[M], data: Any, file: str | Path | None = None, source: LoadedYaml | None = None,
             root_loc: tuple = ()) -> M:
    """Validate plain data against a model; raise ConfigError naming file, key and expectation."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, source, file, root_loc) from None


def load_model(model: type[M], path: str | Path) -> M:
    loaded = load_yaml(path)
    if not isinstance(loaded.data, dict):
        raise ConfigError(path, '<top level>', 'a YAML mapping')
    return validate(model, loaded.data, path, loaded)
