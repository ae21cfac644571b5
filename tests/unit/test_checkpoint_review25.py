"""Review r21 F4: two CheckpointStores on one directory in one process never replace each other's files.

The directory's lock keeps other processes out, not other stores of this one (the daemon builds a new
store per reset while the old one may still be referenced). Each store numbered its files from its own
counter, so ``s1.save(); s2.save(); s1.save()`` wrote seq 1, 2 and 2 again, silently replacing s2's.
"""

import pytest

import stream_cl.checkpoint as ckpt
from stream_cl.checkpoint import CheckpointStore, load_checkpoint
from stream_cl.checkpoint_format import CheckpointError


def _files(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("ckpt-"))


def test_two_stores_on_one_directory_take_distinct_numbers(tmp_path):
    s1, s2 = CheckpointStore(tmp_path, keep=5), CheckpointStore(tmp_path, keep=5)
    a = s1.save({"who": "s1", "n": 1})
    b = s2.save({"who": "s2", "n": 1})
    c = s1.save({"who": "s1", "n": 2})
    assert [a.seq, b.seq, c.seq] == [1, 2, 3]
    assert _files(tmp_path) == [f"ckpt-{i:012d}.safetensors" for i in (1, 2, 3)]
    assert load_checkpoint(b.path)[0] == {"who": "s2", "n": 1}  # s2's checkpoint is still there
    state, info = CheckpointStore(tmp_path).load_latest()
    assert state == {"who": "s1", "n": 2} and info.seq == 3  # the newest is the last one written


def test_a_store_rebuilt_after_a_reset_and_the_old_one_do_not_collide(tmp_path):
    # the daemon's reset: a new store claims the directory and resumes, while the old one is still referenced
    old = CheckpointStore(tmp_path, keep=3).claim()
    old.save({"v": 1})
    new = CheckpointStore(tmp_path, keep=3).claim()
    assert new.load_latest()[0] == {"v": 1}
    assert new.save({"v": 2}).seq == 2
    assert old.save({"v": "late"}).seq == 3  # not 2 again: the new store's file is kept
    assert load_checkpoint(tmp_path / "ckpt-000000000002.safetensors")[0] == {"v": 2}


def test_a_failed_save_gives_its_number_back(tmp_path, monkeypatch):
    # a save that wrote nothing does not leave a gap: the retry takes the same number (as before the fix)
    store = CheckpointStore(tmp_path)
    store.save({"v": 1})

    def full(path, state, meta=None):
        raise CheckpointError("disk full")

    monkeypatch.setattr(ckpt, "save_checkpoint", full)
    with pytest.raises(CheckpointError, match="disk full"):  # (a save that raised nothing had passed too; r102)
        store.save({"v": 2})
    monkeypatch.undo()
    assert store.save({"v": 2}).seq == 2
    assert CheckpointStore(tmp_path).save({"v": 3}).seq == 3
