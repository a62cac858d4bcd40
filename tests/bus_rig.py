"""The common part of the test rigs that put stages on one in-process bus and drive it in simulated time."""
from voice_robot.pipeline import InProcessBus


class BusRig:
    """Owns ``self.bus``; subclasses add their stages and taps to it. A context manager, so that a
    fixture (or a test) closes the bus, and with it every stage, however the test ends."""

    def __init__(self, charge_compute: bool = False):
        self.bus = InProcessBus(charge_compute=charge_compute)

    def run(self, until: float):
        self.bus.run_until(until)

    def close(self):
        self.bus.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
