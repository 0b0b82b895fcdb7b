"""FLAML searchers for automl (registered through the ``automl`` entry point as ``flaml``).

Names: ``cfo``, ``blendsearch``, ``learners``.
"""

from automl_flaml.learners import LearnersSearcher
from automl_flaml.searchers import BlendSearchSearcher, CFOSearcher, FlamlSearcher

__all__ = ["BlendSearchSearcher", "CFOSearcher", "FlamlSearcher", "LearnersSearcher"]
