"""Results round-trip through netCDF with plastinet's attributes intact."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from plastinet.errors import ValidationError
from plastinet.io import load_result, save_result
from plastinet.results import encode_attr, finalize_dataset, variable


def test_round_trip_keeps_data_units_and_global_attrs(tmp_path):
    ds = xr.Dataset({"y": variable(("time", "neuron"), np.arange(6.0).reshape(3, 2), "1", "read-out")},
                    coords={"time": variable("time", np.arange(3.0), "s", "time")})
    finalize_dataset(ds, backend="numpy", backend_version=np.__version__, dt=None, seed=3,
                     model_spec={"a": [1, 2]}, partial=False)
    path = save_result(ds, tmp_path / "r.nc")
    back = load_result(path)
    xr.testing.assert_identical(back["y"], ds["y"])
    assert back.attrs["dt"] == "none" and back.attrs["seed"] == 3 and back.attrs["partial"] == 0
    assert json.loads(back.attrs["model_spec"]) == {"a": [1, 2]}
    assert not list(tmp_path.glob("*.tmp"))


def test_finalize_rejects_variables_without_units():
    ds = xr.Dataset({"y": ("time", np.zeros(2))})
    with pytest.raises(AssertionError, match="y"):
        finalize_dataset(ds, backend="numpy", backend_version="x", dt=None, seed=None, model_spec=None)


def test_encode_attr_makes_netcdf_safe_values():
    assert encode_attr(None) == "none" and encode_attr(True) == 1
    assert json.loads(encode_attr({"b": 1})) == {"b": 1}


def test_save_and_load_reject_bad_paths(tmp_path):
    with pytest.raises(ValidationError, match="path"):
        save_result(xr.Dataset(), tmp_path / "r.txt")
    with pytest.raises(ValidationError, match="no such"):
        load_result(tmp_path / "missing.nc")
