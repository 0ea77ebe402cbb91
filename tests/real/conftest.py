"""The real CT of tests/realdata.py (fetched by ``make test``; skipped with the reason when absent)."""

import pytest

from tests import realdata


@pytest.fixture(scope="session")
def real_ct():
    if not realdata.present():
        reason = realdata.fetch()
        if reason is not None:
            if realdata.required():
                pytest.fail(f"LUNGSYNTH_REAL_CT=require, but {reason}", pytrace=False)
            pytest.skip(reason)
    return realdata.paths()
