"""The in-process bus: offloaded jobs run beside a stage's handlers, their results come back in order."""
import time

from voice_robot import messages as m
from voice_robot.pipeline import InProcessBus, Stage


class Transcriber(Stage):
    """Each chunk starts a slow job (a decode); chunks keep being handled meanwhile."""
    name = 'transcriber'
    outputs = ('hearing/utterances',)

    def __init__(self, job_s: float):
        super().__init__('ada')
        self.job_s = job_s
        self.handled: list[tuple[int, float]] = []
        self.results: list[tuple[int, float]] = []

    def inputs(self):
        return {'audio/raw': self.on_chunk}

    def on_chunk(self, chunk: m.AudioChunk) -> None:
        seq = len(self.handled)
        self.handled.append((seq, self.now()))
        if seq % 2 == 0:
            self.offload(lambda: time.sleep(self.job_s) or seq, self.on_result)

    def on_result(self, seq: int) -> None:
        self.results.append((seq, self.now()))


def chunk(t: float) -> m.AudioChunk:
    import numpy as np
    return m.AudioChunk(t - 0.02, 16000, np.zeros((320, 1), np.float32))


def test_a_slow_job_does_not_hold_the_handlers_and_its_result_comes_when_it_is_done():
    bus = InProcessBus(charge_compute=True)
    stage = bus.add(Transcriber(job_s=0.2), '/ada')
    for i in range(6):
        bus.publish('/ada/audio/raw', chunk(0.02 * (i + 1)), at=0.02 * (i + 1))
    bus.run_until(2.0)
    # Every chunk was handled within a few ms of its arrival, though each job took 0.2 s of compute.
    assert all(at - 0.02 * (seq + 1) < 0.05 for seq, at in stage.handled)
    # One worker: the jobs ran one after another, in order, each result back when its job was done.
    assert [seq for seq, _ in stage.results] == [0, 2, 4]
    done = [at for _, at in stage.results]
    assert done[0] >= 0.02 + 0.2 and done[1] >= done[0] + 0.2 and done[2] >= done[1] + 0.2


def test_without_charged_compute_a_job_is_back_at_the_time_it_was_submitted():
    bus = InProcessBus(charge_compute=False)
    stage = bus.add(Transcriber(job_s=0.01), '/ada')
    bus.publish('/ada/audio/raw', chunk(0.5), at=0.5)
    bus.run_until(1.0)
    assert stage.results == [(0, 0.5)]


def test_a_stage_not_on_a_bus_runs_its_jobs_at_once():
    stage = Transcriber(job_s=0.0)
    stage.bind(lambda topic, msg: None, lambda: 3.0)
    stage.on_chunk(chunk(3.0))
    assert stage.results == [(0, 3.0)] and not stage.offloads


def test_a_failing_job_is_counted_and_the_stage_goes_on():
    bus = InProcessBus(charge_compute=False)
    stage = bus.add(Transcriber(job_s=0.0), '/ada')
    stage.offload(lambda: 1 / 0, stage.on_result)
    bus.publish('/ada/audio/raw', chunk(0.1), at=0.1)
    bus.run_until(1.0)
    assert stage.stats['offloaded job errors'] == 1 and stage.results == [(0, 0.1)]
