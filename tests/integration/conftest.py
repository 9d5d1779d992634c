"""pytest fixtures for ferry's integration tests."""
import os

import pytest

from ferrylib import EFI, ISO, Bochs, Qemu


def pytest_configure(config):
    for f in (EFI,):
        if not os.path.exists(f):
            raise pytest.UsageError(f"{f} is missing: run 'make efi' (make check does)")


@pytest.fixture
def qemu(tmp_path):
    """Start ferry instances under QEMU; all are killed at teardown."""
    started = []

    def start(**kw):
        inst = Qemu(tmp_path, **kw)
        started.append(inst)
        return inst

    yield start
    for inst in started:
        inst.close()


@pytest.fixture(scope="module")
def shared_qemu(tmp_path_factory):
    """One booted instance (QEMU -cpu max) shared by a module's read-only tests."""
    inst = Qemu(tmp_path_factory.mktemp("shared"), name="shared")
    try:
        inst.wait_ready()
        yield inst
    finally:
        inst.close()


@pytest.fixture
def bochs(tmp_path):
    started = []

    def start(**kw):
        if not os.path.exists(ISO):
            pytest.fail(f"{ISO} is missing: run 'make iso' (make check does)")
        inst = Bochs(tmp_path, **kw)
        started.append(inst)
        return inst

    yield start
    for inst in started:
        inst.close()
