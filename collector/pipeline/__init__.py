"""The ordered enrichment pipeline: named steps ``step(event) -> event`` that may drop with a reason."""

from collector.pipeline.event import Dropped, Event
from collector.pipeline.runner import Outcome, Pipeline, Step, build_pipeline

__all__ = ["Dropped", "Event", "Outcome", "Pipeline", "Step", "build_pipeline"]
