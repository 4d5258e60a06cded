"""Places and geofences: model, metric geometry, the STRtree index, CSV/GeoJSON import (docs/places.md)."""

from segel.places.index import EMPTY, Lookup, PlaceIndex
from segel.places.io import (
    ImportErrors,
    import_file,
    load,
    parse_csv,
    parse_file,
    parse_geojson,
    store,
)
from segel.places.model import (
    CORRIDOR,
    KINDS,
    PPK,
    PPS,
    TPS,
    WAREHOUSE,
    ZONE,
    Area,
    Circle,
    Corridor,
    Place,
    PlaceError,
)

__all__ = [
    "EMPTY", "Lookup", "PlaceIndex", "ImportErrors", "import_file", "load", "parse_csv", "parse_file",
    "parse_geojson", "store", "CORRIDOR", "KINDS", "PPK", "PPS", "TPS", "WAREHOUSE", "ZONE", "Area", "Circle",
    "Corridor", "Place", "PlaceError",
]
