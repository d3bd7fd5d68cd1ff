"""The tiny `py:` model of tests/_profile_fakes.py with ten classes (fidelity compares top-5
classes), and one that takes 1-channel inputs (no photograph fits it)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from _profile_fakes import write_tiny

WIDE = "py:nets.py:Wide"
GREY = "py:nets.py:Grey"
MORE = textwrap.dedent(
    """

    class Wide(Tiny):
        def __init__(self, num_classes=10):
            super().__init__()
            self.fc = nn.Linear(4, 10)


    class Grey(Wide):
        default_input_shape = (1, 16, 16)

        def __init__(self, num_classes=10):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
    """
)


def write_wide(folder: Path) -> Path:
    """nets.py with Tiny, Hungry, Wide and Grey in `folder`."""
    path = write_tiny(folder)
    path.write_text(path.read_text() + MORE)
    return path
