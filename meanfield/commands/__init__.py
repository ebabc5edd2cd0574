"""CLI command groups. Each module exposes ``register(app)``; heavy imports happen inside commands."""
