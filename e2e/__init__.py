"""The end-to-end suite: the real agent CLIs against a fake model server on loopback."""
