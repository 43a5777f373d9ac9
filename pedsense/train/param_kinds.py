"""How a :class:`pedsense.train.params.Param` checks a value, one function per kind.

``KIND_CHECKS`` maps each kind (``int``, ``float``, ``bool``, ``choice``, ``text``, ``size``,
``range``, ``device``, ``devices``, ``variant``, ``weights``) to the function that turns a raw
value into a checked one or raises :class:`ConfigError` saying what it must be. Cheap to import.
``Param`` in the annotations is :class:`pedsense.train.params.Param` (not imported: params
imports this module).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from pedsense.data.intent import parse_tte
from pedsense.errors import ConfigError

VARIANT_NAME = re.compile(r"^yolo(v?\d+)([nslmx])?$")


def bound_text(value: float) -> str:
    """A bound as people write it: 2147483647 (not 2.14748e+09), 0.5, 1e-05."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def choice_text(choice: Any) -> str:
    return {None: "none", False: "false", True: "true"}.get(choice, str(choice)) \
        if not isinstance(choice, str) else choice


def parse_number(text: str, kind: type) -> Any:
    try:
        return kind(text) if kind is float else int(text)
    except ValueError:
        return text  # left as text: check() says what it should be


def _check_number(param: Param, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"must be {param.describe()}, got {value!r}.")
    if not math.isfinite(value):
        raise ConfigError(f"must be a finite number ({param.describe()}), got {value!r}.")
    if param.kind == "int":
        if int(value) != value:
            raise ConfigError(f"must be a whole number ({param.describe()}), got {value!r}.")
        value = int(value)
    else:
        value = float(value)
    too_low = param.minimum is not None and (value <= param.minimum if param.exclusive_min
                                             else value < param.minimum)
    too_high = param.maximum is not None and value > param.maximum
    if too_low or too_high or (param.multiple_of and value % param.multiple_of):
        raise ConfigError(f"must be {param.describe()}, got {value!r}.")
    return value


def _check_bool(param: Param, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"must be true or false, got {value!r}.")


def _check_choice(param: Param, value: Any) -> Any:
    for choice in param.choices:
        if value == choice and type(value) is type(choice):
            return choice
    raise ConfigError(f"must be {param.describe()}, got {value!r}.")


def _check_text(param: Param, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"must be text, got {value!r}.")
    return value.strip()


def _check_size(param: Param, value: Any) -> tuple[int, int]:
    if isinstance(value, str):
        parts = [p for p in re.split(r"[x×, ]+", value.strip().lower()) if p]
        value = [parse_number(p, int) for p in parts]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value, value]
    values = list(value) if isinstance(value, (list, tuple)) else []
    if len(values) == 1:
        values *= 2
    side = type(param)(param.name, None, "int", "", minimum=param.minimum, maximum=param.maximum)
    try:
        width, height = (side.check(v) for v in values) if len(values) == 2 else (None, None)
    except ConfigError:
        width = None
    if width is None:
        raise ConfigError(f"must be {param.describe()}, got {value!r}.")
    return width, height


def _check_range(param: Param, value: Any) -> tuple[int, int]:
    low, high = parse_tte(value)
    if (param.minimum is not None and low < param.minimum) or (param.maximum is not None and high > param.maximum):
        raise ConfigError(f"must be {param.describe()}, got {value!r}.")
    return low, high


def _check_device(param: Param, value: Any) -> str | None:
    text = str(value).strip().lower()
    if text in ("", "auto"):
        return None
    if text.isdigit():
        text = f"cuda:{text}"
    if text == "cuda" or re.fullmatch(r"cuda:\d+", text) or text in ("cpu", "mps"):
        return text
    raise ConfigError(f"must be {param.describe()}, got {value!r}.")


def _check_devices(param: Param, value: Any) -> tuple[str, ...] | None:
    from pedsense.device import parse_device_list

    return parse_device_list(value, f"must be {param.describe()}")


def _check_variant(param: Param, value: Any) -> str:
    text = str(value).strip()
    path = Path(text).expanduser()
    if path.suffix.lower() in (".pt", ".yaml", ".yml"):
        if path.is_file() or (path.parent == Path(".") and VARIANT_NAME.match(path.stem)):
            return text
        raise ConfigError(f"{path} does not exist. Give {param.describe()}.")
    if VARIANT_NAME.match(text):
        return text
    raise ConfigError(f"must be {param.describe()}, got {value!r}.")


def _check_weights(param: Param, value: Any) -> str:
    text = str(value).strip()
    if Path(text).suffix.lower() != ".pt":
        raise ConfigError(f"must be {param.describe()}, got {text!r}.")
    return text


KIND_CHECKS = {"int": _check_number, "float": _check_number, "bool": _check_bool,
                "choice": _check_choice, "text": _check_text, "size": _check_size,
                "range": _check_range, "device": _check_device, "devices": _check_devices,
                "variant": _check_variant, "weights": _check_weights}
