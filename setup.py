"""Build hook: everything is configured in pyproject.toml; this adds one package to its find.

``[tool.setuptools.packages.find]`` finds every package under ``src/`` (so no subpackage is left
out of a wheel). The presets live in the top-level ``tasks/`` folder and are installed as
``decisionnets.presets`` (``package-dir`` maps the package to the folder, ``package-data`` takes
its ``*.toml``); a find over ``src/`` cannot see that folder, and pyproject.toml cannot list one
package next to a find, so the package is added here, after pyproject.toml is read.
"""

from setuptools import setup
from setuptools.dist import Distribution

PRESETS = "decisionnets.presets"


class _Distribution(Distribution):
    def parse_config_files(self, *args, **kwargs):
        super().parse_config_files(*args, **kwargs)
        self.packages = list(self.packages or [])
        if PRESETS not in self.packages:
            self.packages.append(PRESETS)


setup(distclass=_Distribution)
