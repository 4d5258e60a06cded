"""Copy the console's map libraries from the pinned npm packages into the package, licences kept.

    cd tools/console-vendor && npm ci && python3 sync.py

The copies are committed (the wheel and the console need no network and no npm at run time);
tests/console/test_vendor.py checks they are byte for byte the pinned packages' files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEST = HERE.parents[1] / "gateway" / "segel" / "console" / "static" / "vendor"

# package -> files (relative to the package) that the console serves
FILES: dict[str, list[str]] = {
    "leaflet": ["LICENSE", "dist/leaflet.js", "dist/leaflet.css", "dist/images/layers.png",
                "dist/images/layers-2x.png", "dist/images/marker-icon.png", "dist/images/marker-icon-2x.png",
                "dist/images/marker-shadow.png"],
    "leaflet.markercluster": ["MIT-LICENCE.txt", "dist/leaflet.markercluster.js", "dist/MarkerCluster.css",
                              "dist/MarkerCluster.Default.css"],
}


def target(package: str, rel: str) -> Path:
    """dist/ is flattened: vendor/<package>/<file> (images/ keeps its folder, as leaflet.css expects)."""
    return DEST / package / (rel[len("dist/"):] if rel.startswith("dist/") else rel)


def main() -> None:
    for package, files in FILES.items():
        shutil.rmtree(DEST / package, ignore_errors=True)
        for rel in files:
            out = target(package, rel)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(HERE / "node_modules" / package / rel, out)
            print(f"{package}/{rel} -> {out.relative_to(HERE.parents[1])}")


if __name__ == "__main__":
    main()
