"""healthcode: open, auditable health-code risk scoring on Kafka."""

__version__ = "0.1.0"
