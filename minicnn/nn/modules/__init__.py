"""L3: ``Module``, ``Parameter`` and the layers (thin wrappers over ``nn.functional``)."""

__all__: list[str] = []
