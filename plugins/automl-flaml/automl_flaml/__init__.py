"""FLAML searchers for automl (registered through the ``automl`` entry point as ``flaml``).

Names: ``cfo``, ``blendsearch``.
"""

from automl_flaml.searchers import BlendSearchSearcher, CFOSearcher, FlamlSearcher

__all__ = ["BlendSearchSearcher", "CFOSearcher", "FlamlSearcher"]
