"""The evaluation loop on built objects: runner, loader, evaluators, timer (docs/architecture.md)."""
