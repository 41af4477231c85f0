"""Environments by name, Gymnasium-style: ``make("twx", numLocations=5)``.

Built in: ``scienceworld``, ``textworld-express`` (alias ``twx``) and ``tiny``. Another
package adds its own under the ``clin.envs`` entry-point group; the entry point's name is the
env's name and its value a class or function that builds it::

    [project.entry-points."clin.envs"]
    my-world = "my_package.world:MyWorld"

or from Python: ``register("my-world", "my_package.world:MyWorld")`` (or the class itself).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from .base import EnvError, TextEnv

ENTRY_POINT_GROUP = "clin.envs"
Factory = Callable[..., TextEnv]


class UnknownEnv(EnvError):
    pass


@dataclass(frozen=True)
class EnvSpec:
    name: str
    entry_point: str | Factory  # "module:attr" (imported when first made) or a callable
    aliases: tuple[str, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)  # defaults for make()

    def factory(self) -> Factory:
        if callable(self.entry_point):
            return self.entry_point
        module, _, attr = self.entry_point.partition(":")
        try:
            obj: Any = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise EnvError(f"environment {self.name} cannot be loaded from "
                           f"{self.entry_point!r} ({exc})") from None
        return obj


_SPECS: dict[str, EnvSpec] = {}
_ALIASES: dict[str, str] = {}
_loaded_plugins = False


def register(name: str, entry_point: str | Factory, *, aliases: Iterable[str] = (),
             **kwargs: Any) -> EnvSpec:
    """Make ``name`` (and its ``aliases``) buildable by :func:`make`; registering a name
    again replaces it."""
    spec = EnvSpec(name, entry_point, tuple(aliases), dict(kwargs))
    _SPECS[name] = spec
    for alias in spec.aliases:
        _ALIASES[alias] = name
    return spec


def _load_plugins() -> None:
    global _loaded_plugins
    if _loaded_plugins:
        return
    _loaded_plugins = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _SPECS:
            register(ep.name, ep.value)


def names() -> list[str]:
    """Every registered env name (built-in and plugins), without aliases."""
    _load_plugins()
    return sorted(_SPECS)


def spec(name: str) -> EnvSpec:
    _load_plugins()
    key = _ALIASES.get(name, name)
    if key not in _SPECS:
        close = difflib.get_close_matches(name, [*_SPECS, *_ALIASES], n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownEnv(f"unknown environment {name!r}.{hint} "
                         f"(environments: {', '.join(names())})")
    return _SPECS[key]


def canonical(name: str) -> str:
    """The env's own name for a name or an alias (``twx`` -> ``textworld-express``)."""
    return spec(name).name


def make(name: str, **kwargs: Any) -> TextEnv:
    """Build the env registered as ``name`` with its defaults updated by ``kwargs``; an
    option the env does not take is one clear ``EnvError``."""
    s = spec(name)
    factory = s.factory()
    options = {**s.kwargs, **kwargs}
    try:
        inspect.signature(factory).bind(**options)
    except TypeError:
        params = [p.name for p in inspect.signature(factory).parameters.values()
                  if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
        bad = next((k for k in options if k not in params), next(iter(options), "?"))
        raise EnvError(f"environment {s.name} takes no option {bad!r}"
                       + (f" (options: {', '.join(params)})" if params else "")) from None
    except ValueError:  # no signature (a builtin): let the call decide
        pass
    env = factory(**options)
    if not isinstance(env, TextEnv):
        raise EnvError(f"environment {s.name} ({s.entry_point!r}) does not implement "
                       "clin.envs.TextEnv (name, profile, tasks, reset, step, "
                       "task_description, close)")
    return env


def parse_options(items: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (the CLI's ``--env-opt``) as keyword arguments: whole numbers
    become ints, true/false bools, anything else stays text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise EnvError(f"--env-opt wants KEY=VALUE, not {item!r}")
        v: Any = value.strip()
        if v.lower() in ("true", "false"):
            v = v.lower() == "true"
        elif v.lstrip("-").isdigit():
            v = int(v)
        out[key.strip()] = v
    return out


register("scienceworld", "clin.envs.scienceworld:ScienceWorld")
register("textworld-express", "clin.envs.twx:TextWorldExpress", aliases=("twx",))
register("tiny", "clin.envs.tiny:TinyWorld")
