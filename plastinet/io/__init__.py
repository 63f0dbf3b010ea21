"""Reading and writing plastinet data: model files (TOML) and results (netCDF)."""

from plastinet.io.model_files import Model, ModelEntry, Section, catalog, find_model, list_models, load_model
from plastinet.io.result_files import load_result, save_result

__all__ = ["Model", "ModelEntry", "Section", "catalog", "find_model", "list_models", "load_model", "load_result",
           "save_result"]
