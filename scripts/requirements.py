"""Print the pinned requirements from pyproject.toml (``dev`` adds the dev tools).

``make`` installs these into .venv directly: the project runs from its checkout and is
never built or installed as a package.
"""

import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())[
    "project"
]
requirements = list(project["dependencies"])
if "dev" in sys.argv[1:]:
    requirements += project["optional-dependencies"]["dev"]
print("\n".join(requirements))
