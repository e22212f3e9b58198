"""The generator's gate fault changes exactly one thing the source can really deliver wrong: the last GA4 export
day, truncated to 5% of its events. Everything else (ERP, CRM, reviews, other days, the answer key) is identical."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "manifest.json"}


def test_gate_fault_truncates_only_the_last_ga4_day(tmp_path):
    import demo_company

    clean, faulty = tmp_path / "clean", tmp_path / "faulty"
    demo_company.generate(clean, scale="XS", seed=7)
    proc = subprocess.run([sys.executable, "-m", "demo_company", "generate", "--scale", "XS", "--seed", "7",
                           "--out", str(faulty), "--inject-fault", "gate"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = _digests(clean), _digests(faulty)
    assert a.keys() == b.keys()
    changed = [k for k in a if a[k] != b[k]]
    last_day = sorted(k for k in a if k.startswith("ga4/events_"))[-1]
    assert changed == [last_day]
    full = (clean / last_day).read_text().splitlines()
    cut = (faulty / last_day).read_text().splitlines()
    assert cut == full[:len(cut)] and 0 < len(cut) <= 0.05 * len(full) + 1
    import json

    fault = json.loads((faulty / "manifest.json").read_text())["fault"]
    assert fault["fault"] == "gate" and fault["rows_before"] == len(full) and fault["rows_after"] == len(cut)
