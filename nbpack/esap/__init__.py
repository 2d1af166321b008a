"""ESAP's vocabulary read as ESAP stores it: shopping-basket items turned into catalogs and file references."""
