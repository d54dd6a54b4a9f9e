"""Named presets (TOML), installed as ``decisionnets.presets``."""
