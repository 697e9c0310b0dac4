"""bssvae.paper: the one transcription of the paper's tables that the book, the README and the benchmark read."""
from __future__ import annotations

import pytest

from bssvae import paper
from bssvae.errors import BssvaeError

#: The paper's Tables II and III typed a second time, from the paper itself, for this test alone: a typo in either
#: copy makes them differ (PSNR dB / SSIM; SI-SDR, SIR, SAR dB).
TABLE_II = {("nmf", 2): (17.22, 0.50), ("ae", 2): (15.96, 0.43), ("glo", 2): (24.63, 0.86),
            ("mixit", 2): (25.69, 0.88), ("vaem", 2): (26.69, 0.93), ("nmf", 3): (18.27, 0.44),
            ("ae", 3): (16.30, 0.43), ("mixit", 3): (25.41, 0.69), ("vaem", 3): (27.68, 0.94)}
TABLE_III = {"nmf": (5.40, 16.93, 7.96), "mixit": (6.64, 17.59, 8.26), "vae": (14.33, 29.92, 14.87),
             "vaem": (17.10, 29.55, 18.20), "ibm": (23.97, 48.89, 24.06), "irm": (22.66, 34.39, 23.23)}


def test_tables_are_as_published():
    assert paper.TABLE_II == TABLE_II
    assert {m: (v["si_sdr"], v["sir"], v["sar"]) for m, v in paper.TABLE_III.items()} == TABLE_III
    assert list(paper.TABLE_III) == ["nmf", "mixit", "vae", "vaem", "ibm", "irm"]  # the paper's column order
    assert (paper.VAEM_K2_PSNR, paper.VAEM_K2_SSIM) == (26.69, 0.93)


def test_table_ii_has_no_cell_the_paper_lacks():
    assert paper.table_ii("vaem", 3) == (27.68, 0.94)
    assert paper.table_ii("vaem", 4) is None and paper.table_ii("glo", 3) is None and paper.table_ii("vae", 2) is None
    assert paper.table_ii("vaem", 2.0) == (26.69, 0.93)  # an integral float names its K
    for bad in (2.7, 0, "2"):  # not truncated to a cell the paper has
        with pytest.raises(BssvaeError, match="k: expected an integer"):
            paper.table_ii("vaem", bad)


def test_a_score_reads_as_the_papers_when_it_rounds_to_it():
    assert paper.rounding_floor(0.93) == 0.925 and paper.rounding_floor(26.69) == 26.685
    assert paper.reads_as(0.926, 0.93) and paper.reads_as(0.925, 0.93) and paper.reads_as(0.95, 0.93)
    assert not paper.reads_as(0.9249, 0.93) and not paper.reads_as(float("nan"), 0.93)
    assert paper.reads_as(26.6851, 26.69) and not paper.reads_as(26.684, 26.69)
    assert paper.reads_as(26.65, 26.7, decimals=1) and not paper.reads_as(26.64, 26.7, decimals=1)
    with pytest.raises(BssvaeError, match="decimals"):
        paper.rounding_floor(0.93, decimals=-1)
    with pytest.raises(BssvaeError, match="non-negative number"):
        paper.rounding_floor(-0.93)


def test_tables_are_read_only():
    with pytest.raises(TypeError):
        paper.TABLE_II[("vaem", 2)] = (30.0, 0.99)
    with pytest.raises(TypeError):
        paper.TABLE_III["vaem"]["si_sdr"] = 30.0
