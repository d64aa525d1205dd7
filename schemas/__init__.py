"""Event contracts of CityStream: one envelope, one module per event family, topics."""
