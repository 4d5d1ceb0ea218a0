"""A Lua script and the declaration of its KEYS and ARGV (see scripts.py for the scripts themselves).

A declaration is a pair of TypedDicts, the order of their fields being the order of KEYS
and ARGV. From it come both sides of a call: :meth:`Script.flatten` turns the named
values into KEYS and ARGV (refusing a missing or unknown name), and :meth:`Script.preamble`
gives the Lua locals ``K`` and ``A`` that read them back by the same names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Generic, NoReturn, TypedDict, TypeVar, get_args, get_origin, get_type_hints

from queueapp.states import FINISHED, lua_constants
from queueapp.store.pipelining import AutoPipeline, PipelinedScript

LUA_DIR = Path(__file__).resolve().parent / "lua"


def _helper_blocks() -> list[tuple[str, str]]:
    """``_common.lua`` cut into its functions, in file order: (name, the function's text)."""
    text = (LUA_DIR / "_common.lua").read_text()
    starts = [m.start() for m in re.finditer(r"^local function ", text, re.MULTILINE)]
    blocks = [text[start:end] for start, end in zip(starts, [*starts[1:], len(text)], strict=True)]
    return [(re.match(r"local function (\w+)", block).group(1), block) for block in blocks]  # type: ignore[union-attr]


_HELPERS = _helper_blocks()


def common_helpers(body: str) -> str:
    """The helpers of ``_common.lua`` that ``body`` calls, with the ones they call, in file order.

    Redis runs a script's whole text on every call, and defining a helper costs as much as a
    few commands' worth of Lua; a script carries only what it uses.
    """
    blocks = dict(_HELPERS)
    needed: set[str] = set()
    pending = [body]
    while pending:
        code = re.sub(r"--[^\n]*", "", pending.pop())  # a helper named in a comment is not called
        for name in set(re.findall(r"\w+", code)) & blocks.keys() - needed:
            needed.add(name)
            pending.append(blocks[name])
    return "".join(block for name, block in _HELPERS if name in needed)


class PerFinishedState:
    """Marks a key that is a list of one key per finished state, in the order of FINISHED."""

    count = len(FINISHED)


PerState = Annotated[list[str], PerFinishedState]
Arg = str | int

KeysT = TypeVar("KeysT", bound=Mapping[str, Any])
ArgsT = TypeVar("ArgsT", bound=Mapping[str, Any])


class NoItem(TypedDict):
    """The items of a script that takes none."""


ItemKeysT = TypeVar("ItemKeysT", bound=Mapping[str, Any])
ItemArgsT = TypeVar("ItemArgsT", bound=Mapping[str, Any])


@dataclass(frozen=True)
class Field:
    name: str
    width: int  # how many KEYS or ARGV entries it takes


def _fields(declaration: type) -> tuple[Field, ...]:
    hints = get_type_hints(declaration, include_extras=True)
    fields = []
    for name, hint in hints.items():
        per_state = get_origin(hint) is Annotated and PerFinishedState in get_args(hint)
        fields.append(Field(name, PerFinishedState.count if per_state else 1))
    return tuple(fields)


def _lua_table(fields: tuple[Field, ...], array: str, offset: str) -> str:
    """``{name = KEYS[offset + 1], several = {KEYS[offset + 2], ...}}`` for the declared fields."""
    parts, position = [], 0
    for field in fields:
        refs = [f"{array}[{offset}{position + i + 1}]" for i in range(field.width)]
        parts.append(f"{field.name} = {refs[0] if field.width == 1 else '{' + ', '.join(refs) + '}'}")
        position += field.width
    return "{" + ", ".join(parts) + "}"


@dataclass(frozen=True)
class Script(Generic[KeysT, ArgsT, ItemKeysT, ItemArgsT]):
    """One Lua script and the declaration of what it takes."""

    name: str
    keys: type[KeysT]
    args: type[ArgsT]
    item_keys: type[ItemKeysT] | None = None
    item_args: type[ItemArgsT] | None = None
    rest: bool = False  # trailing field/value pairs, stored on the task hash

    def __post_init__(self) -> None:
        has_items = self.item_keys is not None or self.item_args is not None
        if has_items and not (self.item_key_fields or self.item_arg_fields):
            raise TypeError(f"script {self.name}: items must take at least one key or argument")
        if has_items and self.rest:
            raise TypeError(f"script {self.name}: items and trailing pairs cannot both follow the fixed arguments")

    @cached_property
    def key_fields(self) -> tuple[Field, ...]:
        return _fields(self.keys)

    @cached_property
    def arg_fields(self) -> tuple[Field, ...]:
        return _fields(self.args)

    @cached_property
    def item_key_fields(self) -> tuple[Field, ...]:
        return _fields(self.item_keys) if self.item_keys else ()

    @cached_property
    def item_arg_fields(self) -> tuple[Field, ...]:
        return _fields(self.item_args) if self.item_args else ()

    def preamble(self) -> str:
        """The Lua locals that name KEYS and ARGV: ``K``, ``A``, and for items ``ITEMS`` and ``item(n)``."""
        fixed_keys = sum(f.width for f in self.key_fields)
        fixed_args = sum(f.width for f in self.arg_fields)
        lines = [
            f"-- Generated from the declaration of '{self.name}' in queueapp/store/scripts.py.",
            f"local K = {_lua_table(self.key_fields, 'KEYS', '')}",
            f"local A = {_lua_table(self.arg_fields, 'ARGV', '')}",
        ]
        if self.rest:
            lines.append(f"local REST = {fixed_args + 1}  -- ARGV[REST..]: field/value pairs")
        if self.item_keys is not None or self.item_args is not None:
            per_key = sum(f.width for f in self.item_key_fields)
            per_arg = sum(f.width for f in self.item_arg_fields)
            count = f"(#KEYS - {fixed_keys}) / {per_key}" if per_key else f"(#ARGV - {fixed_args}) / {per_arg}"
            lines += [
                f"local ITEMS = {count}",
                "local function item(n)",
                f"  local k, a = {fixed_keys} + (n - 1) * {per_key}, {fixed_args} + (n - 1) * {per_arg}",
                f"  return {_lua_table(self.item_key_fields, 'KEYS', 'k + ')}, {_lua_table(self.item_arg_fields, 'ARGV', 'a + ')}",
                "end",
            ]
        return "\n".join(lines) + "\n"

    @cached_property
    def body(self) -> str:
        """The script's own file, ``lua/<name>.lua``."""
        return (LUA_DIR / f"{self.name}.lua").read_text()

    @cached_property
    def source(self) -> str:
        """What Redis runs: the state constants, the preamble, the shared helpers, then the body."""
        helpers = common_helpers(self.body)
        return lua_constants(helpers + self.body) + self.preamble() + helpers + "\n" + self.body

    def flatten(
        self,
        keys: KeysT,
        args: ArgsT,
        items: Sequence[tuple[ItemKeysT, ItemArgsT]] = (),
        rest: Sequence[str] = (),
    ) -> tuple[list[str], list[Arg]]:
        """KEYS and ARGV in the declared order; a missing or unknown name raises TypeError."""
        flat_keys: list[str] = _flat(self.name, "keys", self.key_fields, keys)
        flat_args: list[Arg] = _flat(self.name, "args", self.arg_fields, args)
        if items and self.item_keys is None and self.item_args is None:
            raise TypeError(f"script {self.name} takes no items")
        for item_keys, item_args in items:
            flat_keys += _flat(self.name, "item keys", self.item_key_fields, item_keys)
            flat_args += _flat(self.name, "item args", self.item_arg_fields, item_args)
        if rest:
            if not self.rest or len(rest) % 2:
                raise TypeError(f"script {self.name} takes {'field/value pairs' if self.rest else 'no trailing arguments'}")
            flat_args += list(rest)
        return flat_keys, flat_args


def _flat(script: str, what: str, fields: tuple[Field, ...], values: Mapping[str, Any]) -> list[Any]:
    flat: list[Any] = []
    # As many values as fields, and each field's found: exactly the declared names. (Cheaper
    # than comparing sets, and a call of a busy worker flattens several items per task.)
    if len(values) != len(fields):
        _refuse(script, what, fields, values)
    for field in fields:
        if field.name not in values:
            _refuse(script, what, fields, values)
        value = values[field.name]
        if field.width == 1:
            flat.append(value)
        elif len(value) != field.width:
            raise TypeError(f"script {script} {what}: {field.name} needs {field.width} keys, got {len(value)}")
        else:
            flat += list(value)
    return flat


def _refuse(script: str, what: str, fields: tuple[Field, ...], values: Mapping[str, Any]) -> NoReturn:
    names = {f.name for f in fields}
    missing, unknown = sorted(names - set(values)), sorted(set(values) - names)
    raise TypeError(f"script {script} {what}: missing {missing}, unknown {unknown}")


class BoundScript(Generic[KeysT, ArgsT, ItemKeysT, ItemArgsT]):
    """A script called through one client's :class:`AutoPipeline`."""

    def __init__(self, script: Script[KeysT, ArgsT, ItemKeysT, ItemArgsT], pipeline: AutoPipeline):
        self.script = script
        self._pipeline = pipeline

    @cached_property
    def _call(self) -> PipelinedScript:
        # Assembled at the first call: a worker's first claim waits for two scripts, not twelve.
        return PipelinedScript(self._pipeline, self.script.source)

    async def __call__(self, keys: KeysT, args: ArgsT, *, items: Sequence[tuple[ItemKeysT, ItemArgsT]] = (), rest: Sequence[str] = ()) -> Any:
        flat_keys, flat_args = self.script.flatten(keys, args, items, rest)
        return await self._call(flat_keys, flat_args)
