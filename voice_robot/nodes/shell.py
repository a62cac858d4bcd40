"""The ROS 2 shell around a Stage: one lifecycle node per stage.

The node declares ``robot``, ``deployment_file`` and ``autostart``, plus the stage's own settings as
flattened parameters (``vad.threshold`` ...) so a ``ros__parameters`` YAML file can override them;
the result is validated by the same schema as deployment files. On configure it builds the Stage
(loading models), on activate it creates publishers, subscriptions and timers from the Stage's
topics, converts messages with voice_robot.nodes.convert, and publishes the Stage's counters on
/diagnostics. Bad messages are counted and logged, never fatal.
"""
from __future__ import annotations

import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy

from voice_robot.config.base import validate
from voice_robot.config.errors import ConfigError
from voice_robot.config.params import deep_merge, flatten, ros_value, unflatten
from voice_robot.nodes.convert import CONVERTERS, BadMessage
from voice_robot.pipeline import Stage, resolve, topic_type

# Stage outputs that also feed the REP-155 humans/* topics (voice_robot/nodes/rep155.py).
REP155_SOURCES = {'hearing/utterances', 'faces/observations', 'faces/attention', '/persons'}
# Face observations are a stream: a late frame is worth less than the next one.
SENSOR_QOS = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=50, reliability=QoSReliabilityPolicy.BEST_EFFORT)
# Microphone audio is a stream too, but a lost chunk is lost words (and a gap over max_gap_s restarts
# hearing's stream, cutting the open utterance): while a decode holds hearing's executor on a loaded
# CPU, the reader keeps 5 s of 20 ms chunks (about 0.7 MB at 4 channels), and hearing catches up.
AUDIO_QOS = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=250, reliability=QoSReliabilityPolicy.RELIABLE)
EVENT_QOS = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=100, reliability=QoSReliabilityPolicy.RELIABLE,
                       durability=QoSDurabilityPolicy.VOLATILE)
MAX_WORKER_JOBS = 32     # offloaded jobs queued or running per node
STREAM_QOS = {'audio/raw': AUDIO_QOS, 'faces/observations': SENSOR_QOS}


def qos_for(topic: str) -> QoSProfile:
    return STREAM_QOS.get(topic, EVENT_QOS)


def default_deployment_file() -> str:
    """config/deployment.yaml from the source tree or the installed share directory."""
    here = Path(__file__).resolve().parents[2] / 'config' / 'deployment.yaml'
    if here.exists():
        return str(here)
    try:
        from ament_index_python.packages import get_package_share_directory
        return str(Path(get_package_share_directory('voice_robot')) / 'config' / 'deployment.yaml')
    except Exception:  # ament index missing (plain venv install): fall back to the source path
        return str(here)


# A builder turns (deployment, robot name, the node's validated section) into a Stage.
Builder = Callable[..., Stage]


class StageNode(LifecycleNode):
    def __init__(self, node_name: str, section: str | None, builder: Builder, *,
                 namespace: str | None = None, robot: str | None = None, deployment_file: str | None = None,
                 parameter_overrides: list | None = None, **kwargs):
        super().__init__(node_name, namespace=namespace or '', parameter_overrides=parameter_overrides or [],
                         automatically_declare_parameters_from_overrides=False, **kwargs)
        self._section = section
        self._builder = builder
        self.stage: Stage | None = None
        self._pubs: dict = {}
        self._rep155 = None
        self._subs: list = []
        self._timers: list = []
        self._group = MutuallyExclusiveCallbackGroup()
        self._lock = threading.Lock()
        self._worker: ThreadPoolExecutor | None = None
        self._jobs_waiting = 0
        dyn = ParameterDescriptor(dynamic_typing=True)
        self.declare_parameter('robot', robot or '', dyn)
        self.declare_parameter('deployment_file', deployment_file or default_deployment_file(), dyn)
        self.declare_parameter('autostart', True, dyn)
        self._section_defaults: dict = {}
        if section:
            from voice_robot.config.deployment import SystemConfig
            model = SystemConfig.model_fields[section].default_factory()
            self._section_defaults = flatten(model)
            for key, value in self._section_defaults.items():
                if value is None:
                    self.declare_parameter(key, None, dyn)
                else:
                    self.declare_parameter(key, ros_value(value), dyn)
        if self.get_parameter('autostart').value:
            self._autostart_timer = self.create_timer(0.0, self._autostart)

    # --- lifecycle ---------------------------------------------------------------------------
    def _autostart(self) -> None:
        self.destroy_timer(self._autostart_timer)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def _load(self):
        from voice_robot.config.deployment import load_deployment_or_scenario
        path = self.get_parameter('deployment_file').value
        deployment = load_deployment_or_scenario(path)
        robot = self.get_parameter('robot').value or self.get_namespace().strip('/').split('/')[-1]
        deployment.robot(robot)     # a clear KeyError when the robot is not in the file
        section = None
        if self._section:
            overrides = {}
            for key, default in self._section_defaults.items():
                value = self.get_parameter(key).value
                if value is not None and value != ros_value(default):
                    overrides[key] = value
            base = getattr(deployment, self._section).model_dump(mode='json')
            merged = deep_merge(base, unflatten(overrides))
            model = type(getattr(deployment, self._section))
            section = validate(model, merged, f'parameters of {self.get_fully_qualified_name()}', None)
            deployment = deployment.model_copy(update={self._section: section})
        return deployment, robot, section

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            deployment, robot, section = self._load()
            self.stage = self._builder(deployment=deployment, robot=robot, section=section, node=self)
        except (ConfigError, KeyError, ValueError, OSError, RuntimeError) as exc:
            self.get_logger().error(f'configure failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        self.robot = robot
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f'{self.get_name()}-worker')
        self.stage.bind(self._publish, self._now, self.get_logger(), offload=self._offload)
        self.get_logger().info(f'configured {self.stage.name} for robot {robot}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        stage = self.stage
        ns = self.get_namespace() if self.get_namespace() != '/' else '/' + self.robot
        for topic in stage.outputs:
            typ = topic_type(topic)
            ros_type = CONVERTERS[typ][0]
            qos = qos_for(topic)
            self._pubs[topic] = self.create_publisher(ros_type, resolve(topic, ns), qos)
        for topic, handler in stage.inputs().items():
            typ = topic_type(topic)
            ros_type, _, from_ros = CONVERTERS[typ]
            qos = qos_for(topic)
            self._subs.append(self.create_subscription(
                ros_type, resolve(topic, ns), self._make_callback(topic, handler, from_ros), qos,
                callback_group=self._group))
        for period, callback in stage.timers():
            self._timers.append(self.create_timer(period, self._guard(callback), callback_group=self._group))
        self._rep155 = None
        if set(stage.outputs) & REP155_SOURCES:
            from voice_robot.nodes.rep155 import Rep155Adapter
            self._rep155 = Rep155Adapter(self, EVENT_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._timers.append(self.create_timer(1.0, self._publish_diagnostics, callback_group=self._group))
        self.get_logger().info(f'active: {stage.name} on {ns}')
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        for sub in self._subs:
            self.destroy_subscription(sub)
        for timer in self._timers:
            self.destroy_timer(timer)
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        self._subs, self._timers, self._pubs = [], [], {}
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        if self.stage is not None:
            self.stage.close()
            self.stage = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        if self.stage is not None:
            self.stage.close()
        return TransitionCallbackReturn.SUCCESS

    def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.shutdown(wait=True, cancel_futures=True)

    def _offload(self, job, then) -> None:
        """The stage's long jobs (ASR decodes) run on one worker thread, so they do not hold the
        executor (microphone audio keeps flowing); their results are handled under the stage's lock,
        like every callback, in the order submitted."""
        stage = self.stage

        def run() -> None:
            try:
                result, error = job(), None
            except Exception as exc:
                result, error = None, exc

            def handle() -> None:
                self._jobs_waiting -= 1
                if error is not None:
                    stage.stats['offloaded job errors'] += 1
                    self.get_logger().error(f'{stage.name}: worker job failed: {error!r}')
                else:
                    then(result)
            self._run_locked(handle, 'handler errors', 'error handling a worker result')

        worker = self._worker
        if worker is None:
            stage.stats['not active: worker job skipped'] += 1
            return
        if self._jobs_waiting >= MAX_WORKER_JOBS:
            # The worker cannot keep up (a model far too slow for this host): drop, counted, rather
            # than queue without bound.
            stage.drop('worker queue full', f'{self._jobs_waiting} jobs waiting')
            return
        self._jobs_waiting += 1      # under the lock: submitted from a handler
        worker.submit(run)

    # --- plumbing ----------------------------------------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _publish(self, topic: str, msg) -> None:
        pub = self._pubs.get(topic)
        if pub is None:
            self.stage.stats['not active: publish skipped'] += 1
            return
        to_ros = CONVERTERS[type(msg)][1]
        pub.publish(to_ros(msg, self.robot))
        if self._rep155 is not None:
            self._rep155.on_publish(topic, msg)

    def _make_callback(self, topic: str, handler, from_ros):
        def callback(ros_msg) -> None:
            try:
                msg = from_ros(ros_msg, self.robot)
            except BadMessage as exc:
                self.stage.drop(f'bad {topic}', str(exc))
                return
            except Exception as exc:   # malformed beyond what the converter checks
                self.stage.drop(f'unreadable {topic}', repr(exc))
                return
            self._run_locked(lambda: handler(msg), 'handler errors', f'error handling {topic}')
        return callback

    def _guard(self, callback):
        return lambda: self._run_locked(callback, 'timer errors', 'timer error')

    def _run_locked(self, callback, counter: str, what: str) -> None:
        """A stage callback under the node's lock (subscriptions, timers and worker results never run
        at once); an error is counted and logged, never raised into the executor."""
        with self._lock:
            try:
                callback()
            except Exception as exc:
                self.stage.stats[counter] += 1
                self.get_logger().error(f'{self.stage.name}: {what}: {exc!r}')

    def _publish_diagnostics(self) -> None:
        stage = self.stage
        if stage is None:
            return
        values = stage.diagnostics()
        errors = sum(v for k, v in stage.stats.items() if 'error' in k)
        drops = sum(v for k, v in stage.stats.items() if k.startswith('dropped'))
        level = DiagnosticStatus.ERROR if errors else (DiagnosticStatus.WARN if drops else DiagnosticStatus.OK)
        status = DiagnosticStatus(level=level, name=f'{self.get_fully_qualified_name()}',
                                  message=f'{errors} errors, {drops} dropped inputs',
                                  hardware_id=self.robot,
                                  values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
        self._diag_pub.publish(DiagnosticArray(header=self._header(), status=[status]))

    def _header(self):
        from std_msgs.msg import Header
        return Header(stamp=self.get_clock().now().to_msg())


def share_sim_clock(nodes: list):
    """One /clock subscription for all the nodes of a process that run on simulated time.

    rclpy gives every node with ``use_sim_time`` a /clock subscription of its own, a Python callback
    per node per /clock message: eight per tick in a robot process. Gazebo publishes /clock on every
    physics step (1 kHz by default), and that alone took a whole core of an idle robot process. Here one
    small node subscribes and sets the time of every node's clock; the nodes keep ``use_sim_time`` true,
    so what they report is what they run on. Returns that node (to be spun with the others), or None
    when fewer than two nodes use simulated time or this rclpy keeps its time sources elsewhere.
    """
    from rclpy.parameter import Parameter
    from rclpy.time_source import TimeSource
    followers = [n for n in nodes if n.has_parameter('use_sim_time') and n.get_parameter('use_sim_time').value is True
                 and hasattr(n, '_time_source')]
    if len(followers) < 2:
        return None
    ns = followers[0].get_namespace()
    # The relay itself stays on the wall clock (whatever the process's global parameters say): its own
    # time source would subscribe to /clock a second time.
    relay = rclpy.create_node('sim_clock', namespace=ns if ns != '/' else '',
                              parameter_overrides=[Parameter('use_sim_time', value=False)])
    source = TimeSource(node=relay)
    source.ros_time_is_active = True            # subscribes to /clock on the relay
    for node in followers:
        node._time_source.detach_node()         # drops the node's own /clock subscription
        source.attach_clock(node.get_clock())
    return relay


def spin_nodes(nodes: list) -> None:
    """Spin nodes until Ctrl-C or SIGTERM, then shut them down cleanly.

    Each node gets its own single-threaded executor in its own thread. rclpy's MultiThreadedExecutor
    wakes again and again while a mutually exclusive group is busy (its subscription has data it may
    not take yet), so one long hearing callback (a Whisper decode) made it spin: it burned a core and
    starved hearing of the GIL until its audio queue overflowed. One executor per node waits only on
    its own node, and nodes still overlap where the GIL is released (Whisper, ONNX, numpy). Nodes on
    simulated time share one /clock subscription (``share_sim_clock``), in a thread of its own so that
    no long callback holds up the time of the others.
    """
    stop = threading.Event()
    failures: list[BaseException] = []
    executors = []
    relay = share_sim_clock(nodes)
    if relay is not None:
        nodes = [relay, *nodes]
    for node in nodes:
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executors.append(executor)

    def run(executor) -> None:
        try:
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except BaseException as exc:     # re-raised below, in the caller's thread, once all is shut down
            if executor.context.ok():
                failures.append(exc)
            # else: Ctrl-C shut the context down between two waits, and rclpy reports that as an
            # RCLError ("the given context is not valid") instead of ExternalShutdownException.
        finally:
            stop.set()          # one node's executor ending (shutdown or crash) stops them all

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    threads = [threading.Thread(target=run, args=(e,), name=f'spin-{n.get_name()}', daemon=True)
               for e, n in zip(executors, nodes)]
    for thread in threads:
        thread.start()
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for executor in executors:
            executor.shutdown(timeout_sec=0)
        for thread in threads:
            thread.join(timeout=2.0)
        for node in nodes:
            try:
                if isinstance(node, StageNode) and node.stage is not None:
                    node.stage.close()
                node.destroy_node()
            except Exception:
                pass
    if failures:
        raise failures[0]


def run_stage_node(node_name: str, section: str | None, builder: Builder, args=None) -> None:
    """Entry point of a single-stage node process (console script / ros2 run)."""
    rclpy.init(args=args if args is not None else sys.argv)
    try:
        node = StageNode(node_name, section, builder)
        spin_nodes([node])
    finally:
        if rclpy.ok():
            rclpy.shutdown()
