"""Reports: paper vs measured, hardware comparison, Figure 3 and the Markdown/HTML/Rich rendering.

May import: measure and everything below it; not gate or rank.
"""
