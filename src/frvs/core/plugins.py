"""The one plugin mechanism: model packs (``models/registry.py``) and vector-index
backends (``storage/index/factory.py``) are chosen in the configuration the same way.

A plugin is a settings class derived from ``PluginSettings`` with a literal ``type``
(its name in YAML: ``packs: [{type: dlib, ...}]``, ``index: {type: faiss_pq, ...}``),
typed fields for everything it can be configured with, and a method that builds the
implementation from them. The configuration's field is the discriminated union of the
plugins' settings classes (``Annotated[A | B, Field(discriminator="type")]``, as
Frigate's detector plugins), so a misspelt type or option is refused when the
configuration is loaded, and choosing a plugin is calling its settings' method: no
table of module names, no ``options`` dictionary, no ``isinstance`` chain. Optional
third-party libraries (dlib, FAISS, pymilvus) are imported only when a plugin is built,
and a missing one says how to install it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PluginSettings(BaseModel):
    """Base of every plugin's settings: unknown keys are refused; subclasses narrow
    ``type`` to a ``Literal`` of their name."""

    model_config = ConfigDict(extra="forbid")

    type: str
