"""``cupy.cuda`` of the stand-in: one device with an H200's attributes, streams that do nothing."""
from __future__ import annotations

from types import SimpleNamespace

#: What ``cupy.cuda.Device().attributes`` reports on an H200 (the keys the launchers and the stand-in read).
H200 = {
    "MultiProcessorCount": 132,
    "MaxSharedMemoryPerBlock": 48 * 1024,
    "MaxSharedMemoryPerBlockOptin": 232448,
    "MaxSharedMemoryPerMultiprocessor": 233472,
    "MaxThreadsPerBlock": 1024,
    "MaxThreadsPerMultiProcessor": 2048,
    "MaxBlockDimX": 1024,
    "MaxBlockDimY": 1024,
    "MaxBlockDimZ": 64,
    "MaxGridDimX": 2**31 - 1,
    "MaxGridDimY": 65535,
    "MaxGridDimZ": 65535,
    "WarpSize": 32,
    "ComputeCapabilityMajor": 9,
    "ComputeCapabilityMinor": 0,
}

runtime = SimpleNamespace(getDeviceCount=lambda: 1)


class Device:
    """The one device (id 0)."""

    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)

    @property
    def attributes(self) -> dict:
        return dict(H200)

    @property
    def compute_capability(self) -> str:
        return f"{H200['ComputeCapabilityMajor']}{H200['ComputeCapabilityMinor']}"

    def synchronize(self):
        pass

    def use(self):
        pass


class Stream:
    """A stream: launches run at once here, so there is nothing to wait for."""

    null = None

    def synchronize(self):
        pass


Stream.null = Stream()


def get_current_stream():
    return Stream.null
