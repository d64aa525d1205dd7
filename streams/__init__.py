"""Stream processing: the faust app, its agents, the batch sink and the database layer."""
