"""Gymnasium environments of decisionnets, one task per file.

Importing this package registers them with Gymnasium, as neurogym does for its own::

    gymnasium.make("decisionnets/ColorDirection-v0")
    gymnasium.make("decisionnets/ColorDirectionStatic-v0")
    gymnasium.make("decisionnets/ColorDirectionRT-v0")      # reaction-time version
"""

import gymnasium

from decisionnets.envs.color_direction import (
    COHERENCES,
    LABEL_NAMES,
    ColorDirection,
    ColorDirectionStatic,
    sample_color_direction,
)
from decisionnets.envs.color_direction_rt import ColorDirectionRT, sample_color_direction_rt

ENV_IDS = {
    "ColorDirection": "decisionnets/ColorDirection-v0",
    "ColorDirectionStatic": "decisionnets/ColorDirectionStatic-v0",
    "ColorDirectionRT": "decisionnets/ColorDirectionRT-v0",
}
#: module of each env class (one task per file)
_MODULES = {"ColorDirectionRT": "color_direction_rt"}

for _name, _id in ENV_IDS.items():
    if _id not in gymnasium.registry:
        gymnasium.register(id=_id, entry_point=f"decisionnets.envs.{_MODULES.get(_name, 'color_direction')}:{_name}")

__all__ = [
    "COHERENCES",
    "ENV_IDS",
    "LABEL_NAMES",
    "ColorDirection",
    "ColorDirectionRT",
    "ColorDirectionStatic",
    "sample_color_direction",
    "sample_color_direction_rt",
]
