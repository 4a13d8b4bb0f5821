"""The shell that moves data between Kafka and the scoring core (Faust workers)."""
