"""The order of the example gallery: from the first question a lab asks to the specialised ones.

Scripts not listed here (new examples) follow, in alphabetical order.
"""

from pathlib import Path

ORDER = [
    "plot_color_discarded.py",
    "plot_decoding_over_time.py",
    "plot_cross_temporal.py",
    "plot_choice_vs_direction.py",
    "plot_decoder_families.py",
    "plot_neurogym_task.py",
    "plot_images_coarse_labels.py",
    "plot_agent_reaction_times.py",
    "plot_own_training_loop.py",
    "plot_own_env.py",
]


def example_order(path: str):
    """Sort key of sphinx-gallery's ``within_subsection_order`` (called with a script's path)."""
    name = Path(path).name
    return (ORDER.index(name), "") if name in ORDER else (len(ORDER), name)
