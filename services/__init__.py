"""Department-facing and operator-facing side of CityStream: settings, the local stack,
the Kafka producer and the ``citystream`` command line."""
