"""planner: declarative plan/apply for Google Vertex AI CustomJobs."""

__version__ = "0.1.0"
