"""Gallery calibration searches whole subjects, all of them or a random sample, so that a
10M gallery is calibrated from a bounded number of searches."""

from __future__ import annotations

from pathlib import Path

from callers import LOCAL
from gallery_helpers import CachingAnalyser, add_distractors, enrol_train, make_service


def test_open_set_takes_every_template_or_whole_subjects_up_to_the_cap(
    tmp_path: Path, analyser: CachingAnalyser, data_dir: Path
) -> None:
    service = make_service(f"sqlite:///{tmp_path / 'frvs.db'}", tmp_path, analyser)
    enrol_train(service, data_dir / "identities" / "train")  # 9 photographs, 5 people
    add_distractors(service, "people", 300)
    gallery = service.get("people")

    everything = service._searcher.open_set(gallery)
    assert (everything.subjects, len(everything.nonmated), len(everything.mated)) == (305, 309, 8)

    sample = service._searcher.open_set(gallery, max_probes=50)
    assert 50 <= len(sample.nonmated) <= 54  # whole subjects: a few may bring a second photo
    assert sample.subjects <= 50
    assert len(sample.mated) % 2 == 0  # both photographs of every sampled person

    result = service.calibrate(LOCAL, "people", 0.05)
    assert (result.templates, result.probes, result.subjects) == (309, 309, 305)
    service._store.close()
