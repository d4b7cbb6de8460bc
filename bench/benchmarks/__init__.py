"""One module per benchmark; :mod:`bench.registry` finds them (see its docstring)."""
