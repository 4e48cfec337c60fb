"""Plain NumPy reference implementations: the definition every fast kernel is tested against."""
