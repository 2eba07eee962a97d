"""pipeline.claims.claimed: one worker per piece of work, finished work skipped, claims released."""
from __future__ import annotations

import pytest

from pipeline.claims import Claim, claimed


def test_claimed_skips_done_and_held_work_and_always_releases(tmp_path):
    lock = tmp_path / "a.lock"
    with claimed(lock, done=True) as mine:
        assert mine is False and not lock.exists()          # finished: not even a lock file
    with claimed(lock) as mine:
        assert mine is True and lock.is_file()              # ours for the block
    assert not lock.exists()                                # released after it
    other = Claim(lock)
    assert other.acquire()
    with claimed(lock) as mine:
        assert mine is False                                # another worker holds it
    assert lock.is_file()                                   # and keeps it
    other.release()
    with pytest.raises(RuntimeError), claimed(lock) as mine:
        assert mine
        raise RuntimeError("work failed")
    assert not lock.exists()                                # released when the work raises
