"""The target interface lives in the evaluation core; re-exported here for the targets' modules."""

from weighbridge.evals.protocols import Target

__all__ = ["Target"]
