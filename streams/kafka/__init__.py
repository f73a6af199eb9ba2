"""Kafka: clients that wait for the broker, topics, the events producer, keys, dead letters."""
