"""Numbers quoted in docs/spiking.md are what the bundled models compute."""

import pathlib
import re

import numpy as np
import pytest

from plastinet.experiments import load_model

PAGE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "spiking.md"


def _number(text: str) -> float:
    return float(text.replace("−", "-"))


def _sjostrom_block() -> str:
    text = PAGE.read_text(encoding="utf-8")
    match = re.search(r"<!-- sjostrom-table:start -->(.*?)<!-- sjostrom-table:end -->", text, re.S)
    assert match, "docs/spiking.md lost its Sjöström table markers"
    return match.group(1)


def test_documented_sjostrom_table_is_the_model_files_output():
    """The table comes from models/triplet_sjostrom2001.toml (full visual-cortex row, 60 pairings),
    and its sentence quotes the largest |model - data| / s.e.m. actually measured."""
    block = _sjostrom_block()
    model = load_model("triplet_sjostrom2001")          # full size: about 2 s on the numpy engine
    rule = model.spec[2]
    ds = model.run(progress=False)
    assert "`triplet_sjostrom2001`" in block and "full" in block and "minimal" not in block
    assert f"A3− = {rule.A3_minus:g}" in block and f"τy = {rule.tau_y * 1e3:g} ms" in block
    header = re.search(r"\| ρ \(Hz\) \|(.*)\|", block).group(1)
    assert [float(f) for f in header.split("|")] == list(ds["frequency"].values)
    for d, label in ((0.01, "+10 ms"), (-0.01, "−10 ms")):
        row = re.search(rf"\| model {re.escape(label)} \|(.*)\|", block).group(1)
        documented = np.array([_number(v) for v in row.split("|")])
        np.testing.assert_allclose(documented, ds["dw_rel"].sel(delta_t=d).values, atol=5e-4, rtol=0)
        data = re.search(rf"\| data {re.escape(label)} \|(.*)\|", block).group(1)
        pairs = [[_number(x) for x in cell.split("±")] for cell in data.split("|")]
        np.testing.assert_allclose(np.array(pairs).T, [ds["data_mean"].sel(delta_t=d).values,
                                                       ds["data_sem"].sel(delta_t=d).values])
    deviation = np.abs(ds["dw_rel"] - ds["data_mean"]) / ds["data_sem"]
    quoted = re.search(r"within ([0-9.]+) s\.e\.m\. of the data \(largest deviation: (\S+) ms at (\S+) Hz\)", block)
    assert quoted, block
    assert _number(quoted.group(1)) == pytest.approx(float(deviation.max()), abs=0.005)
    worst = deviation.where(deviation == deviation.max(), drop=True)
    assert _number(quoted.group(2)) == pytest.approx(float(worst["delta_t"].values[0]) * 1e3)
    assert _number(quoted.group(3)) == pytest.approx(float(worst["frequency"].values[0]))


@pytest.mark.slow
def test_documented_song2000_rates_are_the_models():
    """docs/spiking.md quotes post_rate_initial, post_rate_regulated and post_rate of the
    100 s song2000 model (seed 0)."""
    text = PAGE.read_text(encoding="utf-8")
    ds = load_model("song2000").run(progress=False)
    for name in ("post_rate_initial", "post_rate_regulated"):
        quoted = re.search(rf"`{name}` = ([0-9.]+) Hz", text)
        assert quoted, name
        assert float(quoted.group(1)) == pytest.approx(ds.attrs[name], abs=0.05)
    whole = re.search(r"`post_rate` \(([0-9.]+) Hz\) is the mean over the whole run", text)
    assert whole and float(whole.group(1)) == pytest.approx(ds.attrs["post_rate"], abs=0.05)
