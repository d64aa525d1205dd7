"""``make bench``'s peers part: CityStream's worker against Kafka Connect + Debezium's JDBC
sink and quixstreams + its PostgreSQL sink, each draining the same backlog
(tests/bench/peers/compare.py; installed by tests/bench/peers/install.py into ``.bench/``)."""
