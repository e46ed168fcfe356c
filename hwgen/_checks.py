"""Parameter checks shared by the kernels, so that one kind of mistake reads the same
everywhere."""

__all__ = ["check_one_of", "check_supported"]


def check_one_of(name, value, choices):
    """``ValueError("NAME must be one of 'a', 'b', not VALUE")`` unless ``value`` is a choice."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")


def check_supported(name, value, valid):
    """``ValueError("NAME=VALUE is not supported; valid values: ...")`` unless ``value`` is
    one of ``valid`` and of the same type (so ``True`` is not taken for ``1``)."""
    if isinstance(value, bool) or value not in valid or type(value) is not type(valid[0]):
        raise ValueError(f"{name}={value!r} is not supported; valid values: "
                         f"{', '.join(repr(v) for v in valid)}")
