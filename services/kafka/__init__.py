"""Kafka, as CityStream's clients speak it: the only package that imports kafka-python.

- :mod:`~services.kafka.client`: logging in as a principal (SASL/SCRAM), wrong passwords;
- :mod:`~services.kafka.producer`: a department's ``Producer``, the auditor's checkpoints;
- :mod:`~services.kafka.topics`: creating the topics, reading their metadata;
- :mod:`~services.kafka.access` (what each principal may do) and
  :mod:`~services.kafka.acls` (applying it: ACL bindings, SCRAM users);
- :mod:`~services.kafka.reader`: group-less reading of whole topics (audit replay);
- :mod:`~services.kafka.receipts`: a department's receipts topic, read and written again.

The worker reads and writes with aiokafka through faust (:mod:`streams.app`).
"""
