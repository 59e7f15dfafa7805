"""Read settings from the environment: the one place that touches os.environ."""

import os

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envstr(name: str, default: str = "") -> str:
    """Return the variable as a string, or the default when unset."""
    return os.environ.get(name, default)


def envbool(name: str, default: bool = False) -> bool:
    """Return the variable as a boolean (1/0, true/false, yes/no, on/off)."""
    value = os.environ.get(name)
    if value is None:
        return default
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} is not a boolean; use 1 or 0")


def envint(name: str, default: int) -> int:
    """Return the variable as an integer."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a whole number") from None


def envlist(name: str, default: str = "") -> list[str]:
    """Return a comma-separated variable as a list without blanks."""
    return [item.strip() for item in envstr(name, default).split(",") if item.strip()]


def environ_copy(**overrides: str) -> dict[str, str]:
    """Return a copy of the environment with overrides, for child processes."""
    env = dict(os.environ)
    env.update(overrides)
    return env
