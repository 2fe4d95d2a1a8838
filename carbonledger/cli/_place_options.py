"""The place options ``measure`` and ``estimate`` share (one spelling, one help text).

The rule that a place option beats the environment lives in
:func:`carbonledger.intensity.place.command_line_place`; these are only the typer types.
"""

from __future__ import annotations

from typing import Annotated

import typer

Provider = Annotated[str | None, typer.Option(help="Cloud provider: aws, gcp, azure.")]
Region = Annotated[str | None, typer.Option(help="Cloud region, e.g. eu-west-1.")]
Country = Annotated[str | None, typer.Option(help="Country: ISO alpha-2/alpha-3.")]
Zone = Annotated[str | None, typer.Option(help="Electricity Maps zone, e.g. DE.")]
Intensity = Annotated[
    float | None, typer.Option(min=0, help="Grid intensity (gCO2e/kWh); wins over place.")
]
Pue = Annotated[float | None, typer.Option(min=1.0, help="PUE of the data centre.")]
