"""One clear error for a bad configuration or scenario file: which file, which key, what was expected."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration or scenario file is invalid.

    ``str(err)`` reads ``<file>:<line>: <key>: <expectation>`` so editors can jump to it.
    """

    def __init__(self, file: str | Path | None, key: str, expectation: str, line: int | None = None,
                 more: list[str] | None = None):
        self.file = str(file) if file is not None else '<config>'
        self.key = key or '<top level>'
        self.expectation = expectation
        self.line = line
        self.more = more or []
        where = f'{self.file}:{line}' if line else self.file
        text = f'{where}: {self.key}: {expectation}'
        if self.more:
            text += '\n' + '\n'.join(f'  also: {m}' for m in self.more[:5])
            if len(self.more) > 5:
                text += f'\n  ... and {len(self.more) - 5} more'
        super().__init__(text)


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key and sequence item."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping = {}
    lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise ConfigError(None, str(key), 'appears twice in one mapping', key_node.start_mark.line + 1)
        mapping[key] = loader.construct_object(value_node, deep=deep)
        lines[key] = key_node.start_mark.line + 1
    loader.line_index[id(mapping)] = lines
    return mapping


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode, deep: bool = False) -> list:
    seq = [loader.construct_object(child, deep=deep) for child in node.value]
    loader.line_index[id(seq)] = {i: child.start_mark.line + 1 for i, child in enumerate(node.value)}
    return seq


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


class LoadedYaml:
    """Parsed YAML plus the line of each key, to point errors at the right line."""

    def __init__(self, data: Any, path: Path | None, line_index: dict[int, dict]):
        self.data = data
        self.path = path
        self._lines = line_index

    def line_of(self, loc: tuple) -> int | None:
        node, line = self.data, None
        for part in loc:
            lines = self._lines.get(id(node))
            if lines is None or part not in lines:
                break
            line = lines[part]
            node = node[part]
        return line


def load_yaml(path: str | Path) -> LoadedYaml:
    """Read a YAML file; syntax errors become a ConfigError naming file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding='utf-8')
    except FileNotFoundError:
        raise ConfigError(path, '<file>', 'file not found') from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, '<file>', f'a readable UTF-8 YAML file ({exc})') from None
    return parse_yaml(text, path)


def parse_yaml(text: str, path: str | Path | None = None) -> LoadedYaml:
    loader = _LineLoader(text)
    loader.line_index = {}
    try:
        data = loader.get_single_data()
    except ConfigError as exc:
        raise ConfigError(path, exc.key, exc.expectation, exc.line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, 'problem', None) or str(exc)
        raise ConfigError(path, '<yaml>', f'valid YAML ({problem})', line) from None
    finally:
        loader.dispose()
    return LoadedYaml(data, Path(path) if path else None, loader.line_index)


def format_loc(loc: tuple) -> str:
    out = ''
    for part in loc:
        if isinstance(part, int):
            out += f'[{part}]'
        else:
            out += ('.' if out else '') + str(part)
    return out
