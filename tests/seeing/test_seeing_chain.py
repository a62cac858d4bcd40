"""Camera image -> face tracker -> attention -> person manager, all real stages on the in-process bus."""
import numpy as np

from voice_robot import messages as m
from voice_robot.fusing.persons import PersonManager
from voice_robot.pipeline import InProcessBus
from voice_robot.seeing.attention import AttentionStage
from voice_robot.seeing.config import SeeingConfig
from voice_robot.seeing.face_tracker import FaceTrackerStage

from geometry_helpers import make_robot


def test_astronaut_looks_at_the_robot_whose_camera_took_the_photo(analyzer, astronaut):
    ada = make_robot('ada', 2.0, 2.0, 0.0)
    bruno = make_robot('bruno', 2.8, 3.6, -90.0)          # beside her, 60+ degrees off her line of sight
    bus = InProcessBus(charge_compute=False)
    bus.add(FaceTrackerStage(ada, SeeingConfig(), analyzer=analyzer), ada.ns)
    bus.add(AttentionStage(ada, [ada, bruno]), ada.ns)
    manager = bus.add(PersonManager(ada, [ada, bruno]), ada.ns)
    attention, persons = [], []
    bus.tap('/ada/faces/attention', lambda topic, msg, t: attention.append(msg))
    bus.tap('/persons', lambda topic, msg, t: persons.append(msg))
    for k in range(10):
        bus.publish('/ada/camera/image', m.ImageFrame(stamp=0.1 * k, robot='ada', image=astronaut), at=0.1 * k)
    bus.run_until(1.5)
    assert len(attention) == 10 and all(len(f.faces) == 1 for f in attention)
    assert {f.faces[0].face_id for f in attention} == {attention[0].faces[0].face_id}
    assert [f.faces[0].looked_at for f in attention][2:] == ['ada'] * 8
    (person,) = persons[-1].persons
    assert person.looked_at == 'ada' and person.face_ids == [f'ada/{attention[0].faces[0].face_id}']
    face = attention[-1].faces[0]
    expected = ada.base_to_map(np.array([[face.distance * np.cos(face.elevation) * np.cos(face.bearing),
                                          face.distance * np.cos(face.elevation) * np.sin(face.bearing), 0.0]]))[0]
    assert np.linalg.norm(np.array(person.position[:2]) - expected[:2]) < 0.1
    assert manager.attention_during(person.person_id, 0.3, 0.9) == {'ada': 1.0}
