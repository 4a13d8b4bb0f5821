"""The shell that moves data between Kafka and the scoring core: a Faust app around a pure step."""
