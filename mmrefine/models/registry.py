"""Registry of complete architectures buildable from ``model.architecture``.

Each takes ``input_shapes`` (per-modality per-sample shapes, from the data) and
``out_dim`` (from the task), and returns :class:`~mmrefine.models.ModelOutput`.
"""

from mmrefine.core.registry import Registry

ARCHITECTURES: Registry = Registry("architecture")
