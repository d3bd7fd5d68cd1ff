"""The paper's published tables (Tables 4, 5, A1, A2) and its relative claims: pure data, no torch.

May import: registry, errors.
"""
