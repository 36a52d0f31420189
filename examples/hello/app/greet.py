"""Greeting helper, imported by main.py through PYTHONPATH=/root."""


def greeting(prefix: str, name: str) -> str:
    return f"{prefix}, {name}!"
