"""Helpers shared by the test modules: float64 references, tiny models and data builders."""
