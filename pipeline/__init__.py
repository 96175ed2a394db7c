"""The ordered enrichment pipeline: named steps ``step(event) -> event`` that may drop with a reason."""

from pipeline.event import Dropped, Event
from pipeline.runner import Pipeline, Step, build_pipeline

__all__ = ["Dropped", "Event", "Pipeline", "Step", "build_pipeline"]
