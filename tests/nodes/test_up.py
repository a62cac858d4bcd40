"""`voice-robot up` brings a robot's nodes up in its namespace and stops cleanly on Ctrl-C."""
import signal
import subprocess
import sys
import time

import rclpy

DEPLOYMENT = """\
format: voice_robot/deployment@1
robots:
  - name: tess
    position_m: [1.0, 1.0]
    mic_array: {layout: linear, channels: 4, spacing_m: 0.04, height_m: 0.9}
    voice: "espeak:en"
"""


def test_up_starts_namespaced_nodes_and_stops_on_ctrl_c(tmp_path):
    config = tmp_path / 'deployment.yaml'
    config.write_text(DEPLOYMENT)
    proc = subprocess.Popen([sys.executable, '-m', 'voice_robot.cli', 'up', '--config', str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rclpy.init()
    try:
        node = rclpy.create_node('up_watcher')
        wanted = {('hearing', '/tess'), ('floor', '/tess'), ('speech', '/tess'), ('addressee', '/tess'),
                  ('dialogue', '/tess'), ('person_manager', '/tess'), ('motion', '/tess')}
        deadline = time.monotonic() + 90
        found = set()
        while time.monotonic() < deadline and not wanted <= found:
            rclpy.spin_once(node, timeout_sec=0.2)
            found = set(node.get_node_names_and_namespaces())
        assert wanted <= found, f'missing nodes: {wanted - found}'
        # Lifecycle nodes configured and activated themselves: their topics exist.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and node.count_subscribers('/tess/audio/raw') == 0:
            rclpy.spin_once(node, timeout_sec=0.2)
        assert node.count_subscribers('/tess/audio/raw') >= 1
        node.destroy_node()
    finally:
        rclpy.shutdown()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert 'all robots stopped' in out
