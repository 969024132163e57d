"""Golden values: the exact hashes users' caches are stored under.

If one of these tests fails, a change would orphan every existing cache.  Do not
update the values: keep the old encoding, or bump ``identity.FORMAT_VERSION`` and
ship a migration that re-keys stored chunks.
"""

import datetime as dt
import decimal
import enum
from pathlib import PurePosixPath

import numpy as np
import pytest

from chunk_memo import _core, _twin, identity
from chunk_memo.grid import Grid


class Color(enum.Enum):
    RED = 1


Color.__module__ = "tests.golden"  # the encoding names the type; keep it stable here

GOLDEN = [
    ('none', None, '626d368fe0e74b4f1a038927df1311d6'),
    ('true', True, '1d33c0bd3511c80d20948828081ddcb4'),
    ('false', False, 'ccebad3393972e4a79bf233aa9bae29f'),
    ('zero', 0, '65990da81804816bc193c06d71cbf0cd'),
    ('int', 42, 'efcb30e1b28a3e1db34d8a4c681ba29c'),
    ('negative int', -7, '739dc44da3bde1ac145a00355a5f3be9'),
    ('int64 max', 2**63 - 1, '494a2ccb85984c8261a192cdd369c4d2'),
    ('big int', 2**200 + 3, '13bbb1af8e9f8067c8daeb3546a67757'),
    ('negative big int', -(2**80), '3701457db4c90298a83f4a8c784e3d94'),
    ('float', 0.4, 'fc84da483c25ddb8e42e0897ee8db15b'),
    ('negative zero', -0.0, '116d0d22cc8173ec5f6531dcc0133311'),
    ('nan', float('nan'), 'e6f3ecce6b6258c6cf4864359784bbde'),
    ('inf', float('inf'), 'ae0c3a2f6b00ca1593b1a9ce8d3e9633'),
    ('complex', 1.5 - 2j, 'ab30ede48ebc8cc500a1b7e5c53db15b'),
    ('str', 'strat', 'e159b41c9d61e3be941fc638b25985c1'),
    ('unicode', 'héllo 日本', '6445db68616b3e912c58d3c5be1edc8d'),
    ('bytes', b'\x00\xff', '02e934f4cca49da9ae9d37d2338f9f79'),
    ('list', [1, 'a', None], '1818645f4bee6774187ecfd763aaa33c'),
    ('tuple', (1, 'a', None), '1818645f4bee6774187ecfd763aaa33c'),
    ('nested', {'alpha': 0.4, 'grid': [[1, 2], (3, 4)], 'tag': 'x'}, '1ea269a3897803770d00adb048ed92fc'),
    ('set', {3, 1, 2}, '65caa0fc19b5c970836329e882fa6e8c'),
    ('frozenset', frozenset({'b', 'a'}), '38ddd4a2a91bb153fdb4ffb3e9c6923d'),
    ('datetime', dt.datetime(2024, 5, 6, 7, 8, 9, 123), '69d74173eb2fd666878deae4e68417df'),
    ('aware datetime', dt.datetime(2024, 5, 6, tzinfo=dt.timezone.utc), '2501589550d5db778bd728b4328e0b91'),
    ('date', dt.date(2024, 5, 6), '364fc45c4178097f2e7536583d298d4a'),
    ('time', dt.time(7, 8, 9), '441b6ef57feac020cb32fdba3c759d1a'),
    ('timedelta', dt.timedelta(days=-1, seconds=5), 'dcc3acd954ec940ccd24ffd9821744d7'),
    ('decimal', decimal.Decimal('3.1400'), '5bea85dbb936fb46aec4ae236b4f60c8'),
    ('path', PurePosixPath('data/run.txt'), 'f7f88ce738f661ebd27c9d857cdabff7'),
    ('enum', Color.RED, '2722819941fdfcd903d0c6572b5303dc'),
    ('numpy int', np.int32(5), '0ed9ab3622ca7815aa49832972f298a1'),
    ('numpy float', np.float64(2.5), 'eab8f53be1459f9be315c0d539d99766'),
    ('numpy array', np.arange(6, dtype='<f8').reshape(2, 3), '9285b60a6b1aa399b2da8fb0bc72350f'),
    ('numpy object array', np.array(['a', 1], dtype=object), 'ac7b07f3714acf9854bc0f7ac4ce738b'),
]


@pytest.mark.parametrize("name, value, expected", GOLDEN, ids=[row[0] for row in GOLDEN])
def test_value_hash_is_pinned(name, value, expected):
    assert identity.value_hash(value) == expected


def test_format_version_is_pinned():
    assert identity.FORMAT_VERSION == 1


def test_encoding_bytes_are_pinned():
    expected = "64027301736c0269027301787305616c706861663fd999999999999a"
    assert _core.encode({"alpha": 0.4, "s": [1, "x"]}).hex() == expected
    assert _twin.encode({"alpha": 0.4, "s": [1, "x"]}).hex() == expected


def test_quick_start_cache_and_chunk_hashes_are_pinned():
    cache = identity.cache_hash(
        {"alpha": 0.4}, {"strat": ["aaa", "bb"], "s": [1, 2, 3, 4]},
        {"strat": 1, "s": 3}, "v1", ["s", "strat"],
    )
    assert cache == "5203772fc4d3c8d85d86cae33ad1590c"
    key = (("s", (1, 2, 3)), ("strat", ("aaa",)))
    assert identity.chunk_hash({"alpha": 0.4}, key, "v1") == "dc5f048c504085fc07f5c5fc8643cdf0"


def test_batch_chunk_hashes_are_pinned():
    grid = Grid.build({"strat": ["aaa", "bb"], "s": [1, 2, 3, 4]}, {"strat": 1, "s": 3})
    hasher = grid.chunk_hasher({"alpha": 0.4}, "v1")
    assert hasher.hexdigest(grid.ordinal_of((("s", (1, 2, 3)), ("strat", ("aaa",))))) == (
        "dc5f048c504085fc07f5c5fc8643cdf0"
    )
