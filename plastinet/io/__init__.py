"""Reading and writing plastinet data: model files (TOML) and results (netCDF)."""

from plastinet.io.model_files import ModelEntry, Section, catalog, find_model, list_models, read_model_config
from plastinet.io.result_files import load_result, save_result

__all__ = ["ModelEntry", "Section", "catalog", "find_model", "list_models", "read_model_config", "load_result",
           "save_result"]
