"""REP-155 (ROS4HRI) views of what a robot hears and sees, published beside the project's own topics.

In the robot's namespace:
* ``humans/voices/tracked`` (IdsList) and ``humans/voices/<id>/is_speaking`` (std_msgs/Bool), from
  the hearing node's utterances (speaking from the first partial to the final);
* ``humans/faces/tracked`` (IdsList), from the face observations of the face tracker or attention node;
* ``humans/persons/tracked`` (IdsList) and ``humans/persons/<id>/voice_id`` / ``face_id``
  (std_msgs/String), from the person manager.

Per-id publishers are created on demand and removed when an id has not been seen for FORGET_S; at
most MAX_IDS ids are kept so a flood of bogus ids cannot exhaust the node.
"""
from __future__ import annotations

from std_msgs.msg import Bool, String

import voice_robot_interfaces.msg as vr
from voice_robot import messages as m

FORGET_S = 30.0
MAX_IDS = 64
SAFE = str.maketrans({c: '_' for c in '-./: '})


def _ros_id(value: str) -> str:
    """A valid topic name component for an id ('ada/face_3' -> 'ada_face_3')."""
    out = value.translate(SAFE)
    return out if out and out[0].isalpha() else 'id_' + out


class Rep155Adapter:
    def __init__(self, node, qos):
        self.node = node
        self.qos = qos
        self._lists: dict[str, object] = {}
        self._per_id: dict[tuple[str, str, str], tuple[object, float]] = {}
        self._seen: dict[str, dict[str, float]] = {'voices': {}, 'faces': {}, 'persons': {}}
        self._last_value: dict[tuple[str, str, str], object] = {}

    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _list_pub(self, kind: str):
        if kind not in self._lists:
            self._lists[kind] = self.node.create_publisher(vr.IdsList, f'humans/{kind}/tracked', self.qos)
        return self._lists[kind]

    def _publish_id(self, kind: str, ident: str, field: str, msg_type, value) -> None:
        key = (kind, ident, field)
        entry = self._per_id.get(key)
        if entry is None:
            if len(self._per_id) >= MAX_IDS * 3:
                return
            pub = self.node.create_publisher(msg_type, f'humans/{kind}/{_ros_id(ident)}/{field}', self.qos)
        else:
            pub = entry[0]
        self._per_id[key] = (pub, self._now())
        if self._last_value.get(key) != value:
            self._last_value[key] = value
            pub.publish(msg_type(data=value))

    def _track(self, kind: str, ids: list[str]) -> None:
        now = self._now()
        seen = self._seen[kind]
        for ident in ids:
            if ident and (ident in seen or len(seen) < MAX_IDS):
                seen[ident] = now
        for ident in [i for i, t in seen.items() if now - t > FORGET_S]:
            del seen[ident]
            for key in [k for k in self._per_id if k[0] == kind and k[1] == ident]:
                self.node.destroy_publisher(self._per_id.pop(key)[0])
                self._last_value.pop(key, None)
        from voice_robot.nodes.convert import header
        self._list_pub(kind).publish(vr.IdsList(header=header(now), ids=sorted(seen)))

    def on_publish(self, topic: str, msg) -> None:
        if isinstance(msg, m.Utterance) and msg.voice_id:
            self._track('voices', [msg.voice_id])
            self._publish_id('voices', msg.voice_id, 'is_speaking', Bool, not msg.is_final)
        elif isinstance(msg, m.FaceFrame) and topic in ('faces/observations', 'faces/attention'):
            self._track('faces', [f.face_id for f in msg.faces])
        elif isinstance(msg, m.Persons):
            self._track('persons', [p.person_id for p in msg.persons])
            for p in msg.persons:
                if p.voice_id:
                    self._publish_id('persons', p.person_id, 'voice_id', String, p.voice_id)
                if p.face_ids:
                    self._publish_id('persons', p.person_id, 'face_id', String, p.face_ids[0])
