"""Algorithm families, one subpackage each.

Every subpackage holds one family's extractor and matcher side by side (for example
:mod:`extractors.nbis` holds MINDTCT and BOZORTH3), together with whatever converts
between the family's own template format and :class:`bench.template.Template`. They are
registered as plugins through entry points in ``pyproject.toml``; nothing here is
imported until a plugin is used.
"""
