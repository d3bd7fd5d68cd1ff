"""The paper's rank study (section 3.2, Figure 1), feature spectra (Figure 5), observations, figures.

May import: measure and everything below it; not gate or report.
"""
