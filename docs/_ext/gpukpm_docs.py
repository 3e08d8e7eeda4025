"""Sphinx extension of the gpukpm guide: reference pages generated from the code at build time.

* ``.. gpukpm-schema:: NAME`` renders a JSON Schema (the configuration schemas) as nested lists:
  every key with its type, default, allowed values or range, and description.  The schemas come
  from :data:`SCHEMA_SOURCES`, one callable per schema, so a page never copies a schema by hand.
* :func:`cli_parser` hands sphinx-argparse the ``gpukpm`` command's argparse parser.

The schemas are the JSON Schemas of the one configuration schema, the pydantic models of
:mod:`gpukpm.run.schema` (``json_schema("run")``, ``json_schema("pipeline")``).  The renderer reads
pydantic's JSON Schema (``$defs``, ``anyOf``, ``const``, ``title``, unions of models).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList

ROOT = Path(__file__).resolve().parents[2]


def _json_schema(kind: str) -> dict:
    from gpukpm.run.schema import json_schema

    return json_schema(kind)


SCHEMA_SOURCES = {
    "pipeline": lambda: _json_schema("pipeline"),
    "run": lambda: _json_schema("run"),
}


# ----------------------------------------------------------------------------- rendering
def _resolve(schema: dict, root: dict) -> dict:
    """Follow a local ``$ref`` (``#/definitions/…`` or ``#/$defs/…``), merging sibling keys."""
    ref = schema.get("$ref")
    if not ref:
        return schema
    target = root
    for part in ref.lstrip("#/").split("/"):
        target = target[part]
    merged = dict(_resolve(target, root))
    merged.update({k: v for k, v in schema.items() if k != "$ref"})
    return merged


def _type_text(schema: dict, root: dict) -> str:
    if "$ref" in schema and "title" in _resolve(schema, root) and _resolve(schema, root).get("type") == "object":
        return _resolve(schema, root)["title"]
    schema = _resolve(schema, root)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " or ".join(_alternative_text(s, root) for s in schema[key])
    if "allOf" in schema:
        return " and ".join(_type_text(s, root) for s in schema["allOf"])
    kind = schema.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array" and "items" in schema:
        size = ""
        if schema.get("minItems") is not None and schema.get("minItems") == schema.get("maxItems"):
            size = f"{schema['minItems']} × "
        kind = f"array of {size}{_type_text(schema['items'], root)}"
    if "const" in schema:
        kind = f"{json.dumps(schema['const'])}"
    return kind


def _alternative_text(schema: dict, root: dict) -> str:
    resolved = _resolve(schema, root)
    if resolved.get("properties") and "title" in resolved:
        return resolved["title"]
    return _type_text(schema, root)


def _constraints(schema: dict) -> list[str]:
    out = []
    if "enum" in schema:
        out.append("one of " + ", ".join(f"``{json.dumps(v)}``" for v in schema["enum"]))
    for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        if key in schema:
            out.append(f"{sign} {schema[key]}")
    if "minItems" in schema and schema.get("minItems") != schema.get("maxItems"):
        out.append(f"at least {schema['minItems']} items")
    if "default" in schema and not isinstance(schema["default"], dict):
        out.append(f"default ``{json.dumps(schema['default'])}``")
    return out


def _lines(name: str, schema: dict, root: dict, required: bool, indent: str) -> list[str]:
    schema = _resolve(schema, root)
    if "allOf" in schema and "properties" not in schema:
        schema = {**{k: v for s in schema["allOf"] for k, v in _resolve(s, root).items()}, **schema}
    head = f"{indent}- ``{name}`` ({_type_text(schema, root)}{', required' if required else ''})"
    bits = _constraints(schema)
    text = " ".join(str(schema.get("description") or schema.get("title") or "").split())
    if name == "(any name)" and not text:
        text = "one entry per name"
    line = head + (": " + "; ".join(bits) if bits else "") + (f" — {text}" if text else "")
    out = [line.replace("*", r"\*")]
    out += _children(schema, root, indent + "  ")
    return out


def _children(schema: dict, root: dict, indent: str) -> list[str]:
    schema = _resolve(schema, root)
    out = []
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    if "then" in schema:
        required |= set(schema["then"].get("required", []))
    for key, sub in props.items():
        out += _lines(key, sub, root, key in required, indent)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        out += _lines("(any name)", extra, root, False, indent)
    for key in ("anyOf", "oneOf"):  # a union of models: the keys of each
        for alternative in schema.get(key, []):
            resolved = _resolve(alternative, root)
            if resolved.get("properties") and "title" in resolved:
                text = " ".join(str(resolved.get("description", "")).split())
                out += [f"{indent}- *{resolved['title']}*" + (f" — {text}" if text else "")]
                out += _children(resolved, root, indent + "  ")
    if out:
        out = [""] + out + [""]
    return out


def render_schema(schema: dict) -> list[str]:
    """reST lines of a JSON Schema: its description, then one nested item per key."""
    lines = []
    if schema.get("description"):
        lines += [" ".join(schema["description"].split()), ""]
    lines += _children(schema, schema, "")
    return lines


class SchemaDirective(Directive):
    """``.. gpukpm-schema:: NAME``: the schema ``SCHEMA_SOURCES[NAME]`` as nested lists."""

    required_arguments = 1

    def run(self):
        name = self.arguments[0]
        if name not in SCHEMA_SOURCES:
            raise self.error(f"unknown schema {name!r}; known: {sorted(SCHEMA_SOURCES)}")
        container = nodes.container()
        self.state.nested_parse(StringList(render_schema(SCHEMA_SOURCES[name]()), source=f"<schema {name}>"),
                                self.content_offset, container)
        return container.children


def cli_parser():
    """The ``gpukpm`` command's argparse parser (for sphinx-argparse)."""
    from gpukpm import cli

    build = getattr(cli, "build_parser", None) or getattr(cli, "parser", None) or cli._parser
    return build() if callable(build) else build


# ----------------------------------------------------------------------------- docstrings
NUMPYDOC_SECTIONS = {"parameters", "returns", "yields", "raises", "notes", "examples", "see also", "references",
                     "attributes", "methods", "other parameters", "warns", "warnings", "keyword arguments",
                     "receives", "note", "warning", "example", "todo"}
_UNDERLINE = re.compile(r"^\s*([-=~^\"'`#*+])\1{2,}\s*$")


def plain_text_docstring(app, what, name, obj, options, lines):
    """Read gpukpm's docstrings as the plain text they are written as (the code's docstrings are
    for ``help()`` first): ``|x|`` is an absolute value, not a substitution, and a heading inside a
    module docstring becomes a bold line (docutils allows no sections there).  Literal blocks
    (after ``::``) and inline literals are left alone; numpydoc section headers are kept."""
    out, literal_indent = [], None
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None:
            if stripped and indent <= literal_indent:
                literal_indent = None
            else:
                out.append(line)
                continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if stripped and _UNDERLINE.match(nxt) and stripped.lower() not in NUMPYDOC_SECTIONS:
            out.append(" " * indent + "**" + _escape_pipes(stripped) + "**")
            lines[i + 1] = ""  # drop the underline
            continue
        out.append(_escape_pipes(line))
        if stripped.endswith("::"):
            literal_indent = indent
    lines[:] = _descriptions_not_types(out)


_PARAMETER = re.compile(r"^(\s*)([\w*][\w, /*]*?) : (.+)$")
_FIELD_SECTIONS = {"parameters", "other parameters", "returns", "attributes", "keyword arguments"}


def _descriptions_not_types(lines: list[str]) -> list[str]:
    """gpukpm writes ``name : what it is`` on one line; numpydoc would read the text after the colon
    as a type.  Where it is prose (long, literal, or a sentence) it becomes the description."""
    out, section = [], None
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and _UNDERLINE.match(nxt):
            section = line.strip().lower()
        m = _PARAMETER.match(line) if section in _FIELD_SECTIONS else None
        if m:
            indent, name, rest = m.groups()
            following = next((x for x in lines[i + 1:] if x.strip()), "")
            deeper = len(following) - len(following.lstrip()) > len(indent)
            is_type = deeper and len(rest) <= 40 and "``" not in rest and not rest.rstrip().endswith(".")
            if not is_type:
                out += [indent + name, indent + "    " + rest]
                continue
        out.append(line)
    return out


def _escape_pipes(line: str) -> str:
    parts = line.split("``")
    for k in range(0, len(parts), 2):  # outside inline literals
        parts[k] = re.sub(r"(?<!\\)\|", r"\\|", parts[k])
    return "``".join(parts)


def setup(app):
    app.add_directive("gpukpm-schema", SchemaDirective)
    app.connect("autodoc-process-docstring", plain_text_docstring, priority=400)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
