"""The offline tables shipped with wattwise: CPU power (for the estimate), carbon intensity per
country, and cloud regions → grid. Loaded once, lazily; no network access."""

from __future__ import annotations

import csv
import functools
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

_DATA = Path(__file__).resolve().parent / "data"

# 3 W per 8 GB of DDR4, the per-GB figure CodeCarbon v2 and eco2AI use.
RAM_WATTS_PER_GB = 0.375
RAM_MODEL_SOURCE = "3 W per 8 GB of RAM (the DDR4 figure used by CodeCarbon v2 and eco2AI)"


def _rows(name: str) -> list[dict[str, str]]:
    with open(_DATA / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


@dataclass(frozen=True)
class CpuPower:
    """Power model of one CPU: ``watts_per_thread`` at full load per logical CPU."""

    model: str
    watts_per_thread: float
    source: str


@functools.lru_cache(maxsize=1)
def cpu_power_table() -> list[dict[str, str]]:
    return _rows("cpu_power.csv")


def _normalize(name: str) -> str:
    name = re.sub(r"\((R|TM|tm|r)\)", " ", name)
    name = re.sub(r"\bCPU\b|\bProcessor\b|\d+-Core", " ", name)
    return " ".join(name.lower().split())


def lookup_cpu_power(model: str) -> CpuPower:
    """The table row whose pattern the brand string contains (the longest such pattern); an
    unlisted CPU gets the median per-thread power of its family's rows, said so in ``source``.
    """
    norm = _normalize(model)
    best = None
    for row in cpu_power_table():
        pat = _normalize(row["pattern"])
        if re.search(re.escape(pat) + r"(?![0-9a-z])", norm) and (
            best is None or len(pat) > len(_normalize(best["pattern"]))
        ):
            best = row
    if best is not None:
        w = float(best["tdp_w"]) / float(best["threads"])
        src = (
            f"{best['pattern']}: TDP {best['tdp_w']} W over {best['threads']} threads "
            f"({best['source']})"
        )
        return CpuPower(best["pattern"], w, src)
    for family in ("amd epyc", "amd ryzen", "intel xeon", "intel core", ""):
        if family in norm:
            rows = [r for r in cpu_power_table() if _normalize(r["pattern"]).startswith(family)]
            w = statistics.median(float(r["tdp_w"]) / float(r["threads"]) for r in rows)
            what = f"{len(rows)} '{family}' rows" if family else f"all {len(rows)} rows"
            return CpuPower(
                model or "unknown CPU",
                w,
                f"CPU model {model!r} not in the table: median TDP per thread of the {what} "
                "of wattwise's CPU power table",
            )
    raise AssertionError("unreachable: the empty family matches every model")


@functools.lru_cache(maxsize=1)
def country_table() -> dict[str, dict[str, str]]:
    return {r["iso_code"]: r for r in _rows("carbon_intensity_country.csv")}


@functools.lru_cache(maxsize=1)
def cloud_table() -> dict[tuple[str, str], dict[str, str]]:
    return {(r["provider"], r["region"]): r for r in _rows("cloud_regions.csv")}


@dataclass(frozen=True)
class CarbonIntensity:
    g_per_kwh: float
    source: str
    country_iso_code: str
    country_name: str
    region: str


def resolve_carbon_intensity(
    country_iso_code: str | None,
    cloud_provider: str | None,
    cloud_region: str | None,
    carbon_intensity_g_per_kwh: float | None,
    where: str,
) -> CarbonIntensity:
    """Picks the intensity: the user's figure, else the cloud region's grid, else the country's,
    else the world average — each with its source. Raises ValueError naming a bad argument."""
    countries = country_table()
    region = ""
    iso = country_iso_code.upper() if country_iso_code else None
    if cloud_provider is not None or cloud_region is not None:
        if cloud_provider is None or cloud_region is None:
            raise ValueError(
                f"{where}: cloud_provider and cloud_region go together, got "
                f"cloud_provider={cloud_provider!r}, cloud_region={cloud_region!r}"
            )
        key = (cloud_provider.lower(), cloud_region.lower())
        row = cloud_table().get(key)
        if row is None:
            known = sorted({p for p, _ in cloud_table()})
            raise ValueError(
                f"{where}: cloud_region {cloud_region!r} of cloud_provider {cloud_provider!r} "
                f"is not in wattwise's region table (providers: {known}); pass "
                "carbon_intensity_g_per_kwh instead"
            )
        iso = iso or row["iso_code"]
        region = row["location"]
    if iso is not None and iso not in countries:
        raise ValueError(
            f"{where}: country_iso_code {country_iso_code!r} is not in wattwise's table "
            "(ISO 3166-1 alpha-3, e.g. 'FRA'); pass carbon_intensity_g_per_kwh instead"
        )
    if carbon_intensity_g_per_kwh is not None:
        c = countries.get(iso or "WLD")
        return CarbonIntensity(
            float(carbon_intensity_g_per_kwh),
            "user-supplied (carbon_intensity_g_per_kwh)",
            iso or "",
            c["country"] if iso else "",
            region,
        )
    c = countries[iso or "WLD"]
    src = f"{c['country']} {c['year']} average: {c['source']}"
    if region:
        src = f"{cloud_provider}/{cloud_region} ({region}) → " + src
    elif iso is None:
        src = f"world {c['year']} average, no country given: {c['source']}"
    return CarbonIntensity(
        float(c["g_per_kwh"]), src, iso or "", c["country"] if iso else "", region
    )
