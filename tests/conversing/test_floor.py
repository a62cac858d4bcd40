"""Distributed floor control between real FloorStages on one bus, driven by the messages they consume."""
import pytest

from voice_robot import messages as m
from voice_robot.config.robots import RobotSpec
from voice_robot.conversing.config import BargeInConfig, FloorConfig
from voice_robot.conversing.floor import FloorStage
from voice_robot.pipeline import InProcessBus, Stage

ARRAY = {'layout': 'circular', 'channels': 4, 'radius_m': 0.032, 'height_m': 0.9}
ROBOTS = [RobotSpec(name='ada', position_m=[2.0, 2.0], mic_array=ARRAY),
          RobotSpec(name='bruno', position_m=[4.0, 2.0], yaw_deg=180, mic_array=ARRAY)]
CANDS = ['ada', 'bruno', 'robots', 'others']


class Driver(Stage):
    """Publishes what addressee, hearing and speech output would publish (the floor's inputs)."""
    name = 'driver'
    outputs = ('/conversation/addressee', 'hearing/utterances', 'speech/state', '/conversation/turns')


class WireBus(InProcessBus):
    """Delivers every message as a ROS subscriber receives it: converted and serialised (float32
    scores and probabilities, nanosecond stamps), as between the nodes of robots on a network."""

    def _deliver(self, topic, msg, t):
        from rclpy.serialization import deserialize_message, serialize_message
        from voice_robot.nodes.convert import CONVERTERS
        ros_type, to_ros, from_ros = CONVERTERS[type(msg)]
        received = from_ros(deserialize_message(serialize_message(to_ros(msg, 'ada')), ros_type), 'ada')
        super()._deliver(topic, received, t)


def setup(lease_s=1.5, wire=False):
    if wire:
        pytest.importorskip('voice_robot_interfaces.msg')
    bus = (WireBus if wire else InProcessBus)(charge_compute=False)
    floors = {r.name: bus.add(FloorStage(r, ROBOTS, FloorConfig(lease_s=lease_s), BargeInConfig()), r.ns)
              for r in ROBOTS}
    drivers = {r.name: bus.add(Driver(r.name), r.ns) for r in ROBOTS}
    events, commands = [], []
    bus.tap('/conversation/floor', lambda topic, ev, t: events.append((t, ev)))
    for r in ROBOTS:
        bus.tap(f'{r.ns}/speech/command', lambda topic, c, t, name=r.name: commands.append((t, name, c)))
    return bus, floors, drivers, events, commands


def estimate(robot, probs, fused, start=1.0, end=2.0, evidence=()):
    p = dict(zip(CANDS, probs))
    decision = max(p, key=p.get)
    return m.AddresseeEstimate(f'{robot}/1', robot, CANDS, list(probs), decision, start, end,
                               evidence=list(evidence), fused=fused)


def publish_turn(bus, robot, probs_local, probs_fused, at, start=1.0, end=2.0, evidence=()):
    bus.publish('/conversation/addressee', estimate(robot, probs_local, False, start, end, evidence), at=at)
    bus.publish('/conversation/addressee', estimate(robot, probs_fused, True, start, end), at=at + 0.12)


def grants(events):
    return [ev.robot for _, ev in events if ev.kind == m.FloorKind.GRANT]


def test_named_robot_and_only_it_takes_the_floor():
    bus, floors, _, events, _ = setup()
    fused = [0.1, 0.8, 0.05, 0.05]
    publish_turn(bus, 'ada', [0.2, 0.6, 0.1, 0.1], fused, 2.3)
    publish_turn(bus, 'bruno', [0.05, 0.9, 0.03, 0.02], fused, 2.3)
    bus.run_until(3.0)
    assert grants(events) == ['bruno']


def test_group_request_goes_to_exactly_one_robot_by_claim_score():
    bus, _, _, events, _ = setup()
    fused = [0.1, 0.1, 0.7, 0.1]
    looks_at_bruno = [m.CueEvidence('gaze', 'bruno', 0.8, 2.0)]
    publish_turn(bus, 'ada', [0.1, 0.1, 0.7, 0.1], fused, 2.3, evidence=looks_at_bruno)
    publish_turn(bus, 'bruno', [0.1, 0.1, 0.7, 0.1], fused, 2.3, evidence=looks_at_bruno)
    bus.run_until(3.0)
    assert grants(events) == ['bruno']
    claims = {ev.robot: ev.score for _, ev in events if ev.kind == m.FloorKind.CLAIM}
    assert claims['bruno'] > claims['ada']


def test_nobody_answers_side_talk():
    bus, _, _, events, _ = setup()
    fused = [0.1, 0.1, 0.1, 0.7]
    publish_turn(bus, 'ada', [0.3, 0.1, 0.1, 0.5], fused, 2.3)
    publish_turn(bus, 'bruno', [0.1, 0.1, 0.1, 0.7], fused, 2.3)
    bus.run_until(3.0)
    assert grants(events) == []


def ada_is_asked(bus, at=2.3):
    """Both robots decide that a turn ending at 2.0 s is for ada."""
    fused_ada = [0.9, 0.05, 0.03, 0.02]
    publish_turn(bus, 'ada', fused_ada, fused_ada, at)
    publish_turn(bus, 'bruno', fused_ada, fused_ada, at)


def test_addressed_robot_waits_while_another_speaks_then_takes_the_floor():
    bus, floors, drivers, events, _ = setup()
    ada_is_asked(bus)
    bus.run_until(2.5)
    bus.publish('/ada/speech/state', m.SpeechState('ada', True, 's1', started=2.6), at=2.6)
    fused_bruno = [0.05, 0.9, 0.03, 0.02]
    publish_turn(bus, 'ada', fused_bruno, fused_bruno, 3.0, start=2.7, end=3.4)
    publish_turn(bus, 'bruno', fused_bruno, fused_bruno, 3.0, start=2.7, end=3.4)
    bus.run_until(4.5)
    assert grants(events) == ['ada']            # bruno waits: the floor is busy
    bus.publish('/ada/speech/state', m.SpeechState('ada', False, 's1', stamp=4.6), at=4.6)
    bus.publish('/conversation/turns', m.DialogueTurn('ada', 'v1', 'answer', 2.6, 4.6), at=4.6)
    bus.run_until(5.0)
    assert grants(events) == ['ada', 'bruno']
    released = [t for t, ev in events if ev.kind == m.FloorKind.RELEASE and ev.robot == 'ada']
    granted = [t for t, ev in events if ev.kind == m.FloorKind.GRANT and ev.robot == 'bruno']
    assert released and granted and granted[0] >= released[0]


def test_silent_holder_loses_the_floor_after_its_lease():
    bus, floors, _, events, _ = setup(lease_s=1.0)
    floors['ada'].holder = None
    # ada takes the floor, then "crashes": its stage stops running (removed from the bus).
    fused_ada = [0.9, 0.05, 0.03, 0.02]
    publish_turn(bus, 'ada', fused_ada, fused_ada, 2.3)
    publish_turn(bus, 'bruno', fused_ada, fused_ada, 2.3)
    bus.run_until(2.6)
    bus.lanes = [lane for lane in bus.lanes if lane.stage is not floors['ada']]
    for subs in bus._subs.values():
        subs[:] = [(lane, h) for lane, h in subs if lane.stage is not floors['ada']]
    bus._queue = [item for item in bus._queue if item[2][1].stage is not floors['ada']]
    fused_bruno = [0.05, 0.9, 0.03, 0.02]
    publish_turn(bus, 'bruno', fused_bruno, fused_bruno, 2.7, start=2.5, end=2.6)
    bus.run_until(3.3)
    assert grants(events) == ['ada']
    bus.run_until(5.0)
    assert grants(events) == ['ada', 'bruno']
    bruno_grant = [t for t, ev in events if ev.kind == m.FloorKind.GRANT and ev.robot == 'bruno'][0]
    assert bruno_grant <= 2.55 + 1.0 + 0.1      # within the lease of ada's last renewal


def test_racing_grants_leave_one_holder():
    bus, floors, _, events, commands = setup()
    # Two different turns decided at the same instant, each for a different robot.
    for robot in ('ada', 'bruno'):
        publish_turn(bus, robot, [0.9, 0.05, 0.03, 0.02], [0.9, 0.05, 0.03, 0.02], 2.3, start=1.0, end=2.0)
        publish_turn(bus, robot, [0.05, 0.9, 0.03, 0.02], [0.05, 0.9, 0.03, 0.02], 2.3, start=5.0, end=6.0)
    bus.run_until(3.0)
    holders = {name: f.holder.robot if f.holder else None for name, f in floors.items()}
    assert holders['ada'] == holders['bruno']
    assert len(grants(events)) >= 1


@pytest.mark.parametrize('at', [2.14, 2.18, 2.2, 2.3, 2.64, 3.14])
def test_racing_grants_leave_one_holder_over_ros(at):
    # Each robot compares its own grant time with the peer's as the peer's message carries it
    # (nanoseconds): compared with its raw float instead, a tie looked "earlier" to both, both yielded.
    bus, floors, _, events, commands = setup(wire=True)
    for robot in ('ada', 'bruno'):
        publish_turn(bus, robot, [0.9, 0.05, 0.03, 0.02], [0.9, 0.05, 0.03, 0.02], at, start=1.0, end=2.0)
        publish_turn(bus, robot, [0.05, 0.9, 0.03, 0.02], [0.05, 0.9, 0.03, 0.02], at, start=5.0, end=6.0)
    bus.run_until(at + 0.5)
    holders = {name: f.holder.robot if f.holder else None for name, f in floors.items()}
    assert holders == {'ada': 'ada', 'bruno': 'ada'}


@pytest.mark.parametrize('p_group', [0.466165, 0.706015, 0.865915, 0.6, 0.8])
def test_a_group_request_goes_to_exactly_one_robot_over_ros(p_group):
    # Both robots claim with the same score; each must rank its own claim as its peer received it
    # (float32), or an exact tie can round differently on the two sides and nobody answers.
    bus, _, _, events, _ = setup(wire=True)
    rest = (1.0 - p_group) / 3
    probs = [rest, rest, p_group, rest]
    for robot in ('ada', 'bruno'):
        publish_turn(bus, robot, probs, probs, 2.3)
    bus.run_until(3.0)
    assert len(grants(events)) == 1


def speak(bus, at, robot='ada'):
    bus.publish(f'/{robot}/speech/state', m.SpeechState(robot, True, 's1', text='Once upon a time. The sea was calm.',
                                                        started=at, progress=0.3), at=at)


def onset(bus, uid, start, heard, bc, final=False, text=''):
    bus.publish('/ada/hearing/utterances', m.Utterance(uid, 'ada', start, start + heard, is_final=final,
                                                        transcript=text, backchannel_probability=bc),
                at=start + heard + 0.02)


def actions(commands, robot='ada'):
    return [c.action for _, r, c in commands if r == robot]


def test_interruption_stops_the_robot_quickly():
    bus, _, _, _, commands = setup()
    speak(bus, 1.0)
    onset(bus, 'ada/9', 3.0, 0.05, 0.3)
    onset(bus, 'ada/9', 3.0, 0.18, 0.1)
    bus.run_until(3.3)
    cancel = [t for t, r, c in commands if c.action == m.SpeechAction.CANCEL]
    assert m.SpeechAction.DUCK in actions(commands) and cancel
    assert cancel[0] - 3.0 <= 0.25


def test_an_acoustic_stop_survives_the_float32_utterance_message():
    # On a robot the floor reads hearing's utterances off a ROS topic, whose probabilities are float32:
    # the bounded acoustic estimate 0.1 arrives as 0.10000000149 and must still stop the robot.
    bus, _, _, _, commands = setup(wire=True)
    received = []
    bus.tap('/ada/hearing/utterances', lambda topic, u, t: received.append(u.backchannel_probability))
    speak(bus, 1.0)
    onset(bus, 'ada/9', 3.0, 0.05, 0.3)
    onset(bus, 'ada/9', 3.0, 0.13, 0.1)
    bus.run_until(3.3)
    assert received[-1] != 0.1 and received[-1] == pytest.approx(0.1, abs=1e-7)
    assert [t for t, r, c in commands if c.action == m.SpeechAction.CANCEL] == [pytest.approx(3.15)]


def test_garbled_words_over_our_voice_do_not_override_a_backchannel_estimate():
    bus, _, _, _, commands = setup()
    speak(bus, 1.0)
    onset(bus, 'ada/9', 3.0, 0.05, 0.0)
    onset(bus, 'ada/9', 3.0, 0.18, 0.8)
    onset(bus, 'ada/9', 3.0, 0.3, 0.7, text='Seven and then.')
    onset(bus, 'ada/9', 3.0, 0.45, 0.7, final=True, text='Seven and then.')
    bus.run_until(4.0)
    assert m.SpeechAction.CANCEL not in actions(commands)
    # ... while words that open an interruption stop it at once, whatever the acoustics said.
    bus, _, _, _, commands = setup()
    speak(bus, 1.0)
    onset(bus, 'ada/9', 3.0, 0.18, 0.8)
    onset(bus, 'ada/9', 3.0, 0.3, 0.7, text='Sorry, wait')
    bus.run_until(3.4)
    assert m.SpeechAction.CANCEL in actions(commands)


def talked_over(heard_bc_text, until):
    """ada speaking from 1.0 s; a person from 3.0 s, heard as partials (heard s, backchannel p, words)."""
    bus, _, _, _, commands = setup()
    speak(bus, 1.0)
    for heard, bc, text in heard_bc_text:
        onset(bus, 'ada/9', 3.0, heard, bc, text=text)
    bus.run_until(until)
    return bus, commands


def test_speech_that_goes_on_stops_the_robot_but_a_short_finished_one_does_not():
    # No words yet, acoustics undecided, still talking.
    _, commands = talked_over([(heard, 0.5, '') for heard in (0.05, 0.18, 0.3, 0.45, 0.62)], until=3.7)
    assert m.SpeechAction.CANCEL in actions(commands)
    bus, _, _, _, commands = setup()
    speak(bus, 1.0)
    onset(bus, 'ada/9', 3.0, 0.18, 0.5)
    # Over, 0.75 s with the VAD's tail, and what ASR made of it is no interruption.
    onset(bus, 'ada/9', 3.0, 0.75, 0.5, final=True, text='That is lovely.')
    bus.run_until(4.0)
    assert m.SpeechAction.CANCEL not in actions(commands)


def test_a_drawn_out_backchannel_gets_until_it_is_clearly_longer_than_one():
    # Our voice's residue stretches a "yeah" past give_up_after_s; hearing still takes it for a
    # listener response and its words are no interruption: keep talking.
    def yeah(*heard):
        return [(h, 0.84, 'You got it.' if h > 0.4 else '') for h in heard]

    bus, commands = talked_over(yeah(0.05, 0.18, 0.3, 0.45, 0.63), until=3.68)
    onset(bus, 'ada/9', 3.0, 0.7, 0.84, final=True, text='You got it.')
    bus.run_until(4.0)
    assert m.SpeechAction.CANCEL not in actions(commands)
    # The same start, but the person goes on talking: stopped once clearly longer than a backchannel.
    bus, commands = talked_over(yeah(0.05, 0.18, 0.3, 0.45, 0.63, 0.9), until=3.95)
    assert m.SpeechAction.CANCEL not in actions(commands)
    onset(bus, 'ada/9', 3.0, 1.25, 0.6, text='You got it all wrong about the')
    bus.run_until(4.4)
    assert m.SpeechAction.CANCEL in actions(commands)


def test_a_reply_that_ends_under_a_backchannel_frees_the_floor_once_that_is_decided():
    # make demo: bruno's answer ended while a "mm-hmm" over its last words was still undecided; the
    # dialogue's turn came first and the floor was held 10 s more, so the follow-up question was dropped.
    bus, floors, _, events, commands = setup()
    ada_is_asked(bus)
    bus.run_until(2.5)
    assert grants(events) == ['ada']
    speak(bus, 2.6)
    onset(bus, 'ada/9', 4.0, 0.18, 0.9)
    onset(bus, 'ada/9', 4.0, 0.3, 0.9)
    bus.publish('/ada/speech/state', m.SpeechState('ada', False, 's1', progress=1.0, stamp=4.4), at=4.4)
    bus.publish('/conversation/turns', m.DialogueTurn('ada', 'v1', 'The sea was calm.', 2.6, 4.4), at=4.42)
    bus.run_until(4.5)
    assert not [ev for _, ev in events if ev.kind == m.FloorKind.RELEASE]     # still deciding
    assert floors['ada'].stats['releases waiting for a barge-in decision'] == 1
    onset(bus, 'ada/9', 4.0, 0.5, 0.9, final=True, text='Mm-hmm.')
    bus.run_until(5.0)
    released = [t for t, ev in events if ev.kind == m.FloorKind.RELEASE and ev.robot == 'ada']
    assert released and released[0] <= 4.7
    assert m.SpeechAction.CANCEL not in actions(commands)


def test_a_late_partial_of_speech_before_ours_is_no_barge_in():
    bus, floors, _, _, commands = setup()
    speak(bus, 3.0)
    # Hearing lags: a partial of an utterance that ended before we began arrives while we speak.
    bus.publish('/ada/hearing/utterances', m.Utterance('ada/9', 'ada', 0.5, 2.9, transcript='Ada, what time is it?'),
                at=3.1)
    bus.run_until(3.5)
    assert actions(commands) == []
    assert floors['ada'].stats['barge-in ignored (ended before our speech)'] == 1


def test_backchannel_keeps_the_robot_talking():
    bus, _, _, _, commands = setup()
    speak(bus, 1.0)
    onset(bus, 'ada/9', 3.0, 0.05, 0.5)
    onset(bus, 'ada/9', 3.0, 0.18, 0.9)
    onset(bus, 'ada/9', 3.0, 0.5, 0.95, final=True, text='Mm-hmm.')
    bus.run_until(4.0)
    assert m.SpeechAction.CANCEL not in actions(commands)
    assert actions(commands)[-1] == m.SpeechAction.UNDUCK


def test_a_cough_lets_the_robot_resume():
    bus, _, _, _, commands = setup()
    # The act's text came in two parts; the state says only what was played before the cough.
    tell_story(bus)
    onset(bus, 'ada/9', 3.0, 0.18, 0.05)
    bus.run_until(3.25)
    story_cut(bus, 3.22)
    onset(bus, 'ada/9', 3.0, 0.35, 0.1, final=True, text='')
    bus.run_until(4.0)
    assert resumed(commands) == ['The sea was calm. The end.']


def tell_story(bus):
    bus.publish('/ada/speech/command', m.SpeechCommand(m.SpeechAction.SAY, 's1', 'Once upon a time. The sea'), at=0.9)
    bus.publish('/ada/speech/command', m.SpeechCommand(m.SpeechAction.APPEND, 's1', 'was calm. The end.'), at=0.95)
    speak(bus, 1.0)


def story_cut(bus, at):
    bus.publish('/ada/speech/state', m.SpeechState('ada', False, 's1', text='Once upon a time. The sea was',
                                                    progress=0.6, cancelled=True, stamp=at), at=at)


def resumed(commands):
    return [c.text for _, r, c in commands if c.action == m.SpeechAction.SAY and c.speech_id.endswith('resumed')]


def test_nobody_takes_the_floor_while_a_person_is_still_talking():
    bus, _, _, events, _ = setup()
    bus.publish('/bruno/hearing/utterances', m.Utterance('bruno/5', 'bruno', 2.2, 2.4), at=2.42)
    fused = [0.05, 0.9, 0.03, 0.02]
    publish_turn(bus, 'ada', fused, fused, 2.3)
    publish_turn(bus, 'bruno', fused, fused, 2.3)
    bus.run_until(2.8)
    assert grants(events) == []                       # someone is still speaking
    bus.publish('/bruno/hearing/utterances', m.Utterance('bruno/5', 'bruno', 2.2, 3.0, is_final=True,
                                                         transcript='and one more thing'), at=3.05)
    bus.run_until(3.2)
    assert grants(events) == ['bruno']


def test_a_person_who_talks_on_holds_the_answer_until_their_final_or_only_so_long():
    """While the robot is silent, hearing sends partials only as an utterance starts: a talker is
    talking until the final, however long ago the last partial came. The answer waits for them, but
    not for ever (a radio heard as a person, someone in a long side conversation)."""
    fused = [0.05, 0.9, 0.03, 0.02]
    for final_at, granted_at in ((3.7, 3.7), (None, 4.0)):
        bus, _, _, events, _ = setup()
        publish_turn(bus, 'ada', fused, fused, 2.3)
        publish_turn(bus, 'bruno', fused, fused, 2.3)
        # Someone else started at 2.1; their partials stop 0.3 s in, and they go on past the turn's end.
        bus.publish('/bruno/hearing/utterances', m.Utterance('bruno/6', 'bruno', 2.1, 2.22), at=2.23)
        bus.publish('/bruno/hearing/utterances', m.Utterance('bruno/6', 'bruno', 2.1, 2.4), at=2.41)
        if final_at is not None:
            bus.publish('/bruno/hearing/utterances', m.Utterance('bruno/6', 'bruno', 2.1, final_at - 0.3,
                                                                 is_final=True, transcript='and so on'), at=final_at)
        bus.run_until(granted_at - 0.1)
        assert grants(events) == [], final_at        # 1.5 s after the last partial: still talking
        bus.run_until(granted_at + 0.1)
        # Their final ends the hold; without one, 2 s after the turn ended the person who asked is answered.
        assert grants(events) == ['bruno'], final_at


def test_someone_the_robot_chose_to_talk_over_does_not_interrupt_it_but_a_new_talker_does():
    bus, _, _, events, commands = setup()
    fused = [0.05, 0.9, 0.03, 0.02]
    publish_turn(bus, 'ada', fused, fused, 2.3)
    publish_turn(bus, 'bruno', fused, fused, 2.3)
    bus.publish('/bruno/hearing/utterances', m.Utterance('bruno/6', 'bruno', 2.1, 2.4), at=2.41)
    bus.run_until(4.1)
    assert grants(events) == ['bruno']                # 2 s after the turn: over the person still talking
    speak(bus, 4.1, robot='bruno')
    bus.publish('/bruno/hearing/utterances', m.Utterance('bruno/6', 'bruno', 2.1, 4.3, backchannel_probability=0.1),
                at=4.31)
    bus.run_until(4.5)
    assert actions(commands, 'bruno') == []
    bus.publish('/bruno/hearing/utterances', m.Utterance('bruno/7', 'bruno', 4.5, 4.9, backchannel_probability=0.1),
                at=4.91)
    bus.run_until(5.0)
    assert actions(commands, 'bruno') == [m.SpeechAction.DUCK, m.SpeechAction.CANCEL]


def test_a_few_garbled_words_over_our_voice_are_talked_on_over_not_answered():
    """Our residue can turn an "mm-hmm" into words ("Same thing."). Short, no question, no name, nothing
    that cuts in: after stopping for it the robot picks its act up again, and nobody answers it."""
    bus, floors, _, events, commands = setup()
    publish_turn(bus, 'ada', [0.9, 0.05, 0.03, 0.02], [0.9, 0.05, 0.03, 0.02], 0.5, start=0.1, end=0.4)
    bus.run_until(0.9)
    tell_story(bus)
    onset(bus, 'ada/9', 3.0, 0.05, 0.1)
    onset(bus, 'ada/9', 3.0, 0.3, 0.1)
    bus.run_until(3.4)
    assert m.SpeechAction.CANCEL in actions(commands)           # the acoustics took it for an interruption
    story_cut(bus, 3.32)
    onset(bus, 'ada/9', 3.0, 0.8, 0.12, final=True, text='Same thing.')
    bus.run_until(3.9)
    assert resumed(commands) == ['The sea was calm. The end.']
    # Addressee then takes the words for a turn to ada: the floor does not answer it.
    publish_turn(bus, 'ada', [0.9, 0.05, 0.03, 0.02], [0.9, 0.05, 0.03, 0.02], 4.0, start=3.0, end=3.8)
    bus.run_until(5.0)
    assert grants(events) == ['ada'] and floors['ada'].stats['short remarks talked on over'] == 1


@pytest.mark.parametrize('backchannel, stops', [(0.9, False), (0.1, True)])
def test_a_sound_without_words_over_our_voice_is_never_answered(backchannel, stops):
    """Hearing keeps the voice of a long "mm-hmm" but drops the words it could not tell from our residue:
    whether the robot talked on over it or stopped and picked its act up again, nobody answers it."""
    bus, floors, _, events, commands = setup()
    publish_turn(bus, 'ada', [0.9, 0.05, 0.03, 0.02], [0.9, 0.05, 0.03, 0.02], 0.5, start=0.1, end=0.4)
    bus.run_until(0.9)
    tell_story(bus)
    onset(bus, 'ada/9', 3.0, 0.05, backchannel)
    onset(bus, 'ada/9', 3.0, 0.3, backchannel)
    bus.run_until(3.4)
    assert (m.SpeechAction.CANCEL in actions(commands)) == stops
    if stops:
        story_cut(bus, 3.32)
    onset(bus, 'ada/9', 3.0, 0.8, backchannel, final=True, text='')
    bus.run_until(3.9)
    assert resumed(commands) == (['The sea was calm. The end.'] if stops else [])
    publish_turn(bus, 'ada', [0.9, 0.05, 0.03, 0.02], [0.9, 0.05, 0.03, 0.02], 4.0, start=3.0, end=3.8)
    # The story ends: the floor is free, and the sound is still not a turn to take it for.
    bus.publish('/ada/speech/state', m.SpeechState('ada', False, 's1', stamp=4.6), at=4.6)
    bus.publish('/conversation/turns', m.DialogueTurn('ada', 'v1', 'The end.', 1.0, 4.6), at=4.6)
    bus.run_until(6.0)
    assert grants(events) == ['ada']


@pytest.mark.parametrize('leaned, answered', [(0.76, False), (0.4, True)])
def test_longer_garbled_words_of_what_hearing_took_for_a_backchannel_are_not_answered(leaned, answered):
    """A one-second "mm-hmm" over our voice: hearing's acoustics said "backchannel" (0.76) while it went
    on, then its final decode made four words of it. Not a turn; with acoustics that never leaned to a
    backchannel, four words are one."""
    bus, floors, _, events, commands = setup()
    publish_turn(bus, 'ada', [0.9, 0.05, 0.03, 0.02], [0.9, 0.05, 0.03, 0.02], 0.5, start=0.1, end=0.4)
    bus.run_until(0.9)
    tell_story(bus)
    for heard in (0.05, 0.18, 0.3, 0.45):
        onset(bus, 'ada/9', 3.0, heard, leaned)
    onset(bus, 'ada/9', 3.0, 1.05, 0.49, final=True, text='And that is something.')
    bus.run_until(4.2)
    assert m.SpeechAction.CANCEL not in actions(commands)
    publish_turn(bus, 'ada', [0.9, 0.05, 0.03, 0.02], [0.9, 0.05, 0.03, 0.02], 4.3, start=3.0, end=4.05)
    bus.publish('/ada/speech/state', m.SpeechState('ada', False, 's1', stamp=4.6), at=4.6)
    bus.publish('/conversation/turns', m.DialogueTurn('ada', 'v1', 'The end.', 1.0, 4.6), at=4.6)
    bus.run_until(6.0)
    assert (grants(events) == ['ada', 'ada']) == answered, grants(events)


def test_a_withdrawn_fragment_over_our_voice_does_not_swallow_the_turn_around_it():
    """Replayed from an `eval --ros` run: hearing opened an 80 ms fragment just after a person began
    "Wait, wait." over the robot's story and took it back (a final with no words: nothing to stop for,
    nobody answers it). The person's own utterance, begun 30 ms before it, stopped the robot and, with
    "What time is it?" after a pause, made one turn for ada around the fragment's span. It is answered."""
    bus, _, _, events, commands = setup()
    ada_only = [0.9, 0.05, 0.03, 0.02]
    publish_turn(bus, 'ada', ada_only, ada_only, 0.5, start=0.1, end=0.4)
    bus.run_until(0.9)
    tell_story(bus)
    onset(bus, 'ada/9', 3.03, 0.06, 0.0)
    onset(bus, 'ada/9', 3.03, 0.08, 0.0, final=True)               # withdrawn
    bus.run_until(3.15)
    onset(bus, 'ada/10', 3.0, 0.13, 0.1)
    bus.run_until(3.2)
    assert m.SpeechAction.CANCEL in actions(commands)
    story_cut(bus, 3.2)
    onset(bus, 'ada/10', 3.0, 0.86, 0.02, final=True, text='Wait, wait.')
    bus.run_until(4.5)
    publish_turn(bus, 'ada', ada_only, ada_only, 5.8, start=3.0, end=5.3)
    bus.run_until(6.5)
    assert grants(events) == ['ada', 'ada']


def test_a_reply_the_person_talked_over_to_finish_their_question_is_given_again_for_the_whole_question():
    """Replayed from a charged public run on a slow host: hearing's partials of "What time does the
    cafeteria close?" stalled after "What time", and a turn over that start came first. The floor waits
    while the utterance is open, but only 2 s after the turn; a host lagging longer lets ada begin to
    answer the start. The same utterance goes on over its reply and stops it; the whole question, once
    final, is answered."""
    bus, _, _, events, commands = setup()
    ada_only = [0.9, 0.05, 0.03, 0.02]
    bus.publish('/ada/hearing/utterances', m.Utterance('ada/1', 'ada', 1.0, 1.07), at=1.1)
    publish_turn(bus, 'ada', ada_only, ada_only, 2.3, start=1.0, end=1.07)
    bus.run_until(2.5)
    assert grants(events) == []                     # the person may not be done
    bus.run_until(3.2)
    assert grants(events) == ['ada']
    speak(bus, 3.2)
    onset(bus, 'ada/1', 1.0, 2.3, 0.5)              # the question goes on over the reply
    bus.run_until(3.4)
    assert m.SpeechAction.CANCEL in actions(commands)
    bus.publish('/ada/speech/state', m.SpeechState('ada', False, 's1', cancelled=True, stamp=3.36), at=3.36)
    onset(bus, 'ada/1', 1.0, 2.5, 0.01, final=True, text='What time does the cafeteria close?')
    publish_turn(bus, 'ada', ada_only, ada_only, 3.6, start=1.0, end=3.5)
    bus.run_until(4.4)
    assert grants(events) == ['ada', 'ada']


def test_a_request_is_not_talked_on_over():
    bus, _, _, _, commands = setup()
    speak(bus, 1.0)
    onset(bus, 'ada/9', 3.0, 0.3, 0.1)
    bus.run_until(3.4)
    story_cut(bus, 3.32)
    onset(bus, 'ada/9', 3.0, 0.8, 0.12, final=True, text='Tell me more.')
    bus.run_until(3.9)
    assert resumed(commands) == []


def test_a_turn_for_nobody_gives_way_to_another_utterance_in_the_same_span():
    bus, _, _, events, _ = setup()
    fragment = estimate('ada', [0.05, 0.05, 0.05, 0.85], True, start=18.42, end=18.94)
    bus.publish('/conversation/addressee', fragment, at=19.8)
    bus.run_until(20.0)
    request = m.AddresseeEstimate('ada/3', 'ada', CANDS, [0.9, 0.04, 0.03, 0.03], 'ada', 18.35, 20.67, fused=True)
    bus.publish('/conversation/addressee', request, at=21.2)
    bus.run_until(21.6)
    assert grants(events) == ['ada']



def test_the_whole_request_decides_over_a_fragment_of_its_first_word():
    """Replayed from a `make demo` run: bruno heard theo's first word as a fragment from maya's bearing,
    with her voice ("Something.", decided alone: for ada, maya's partner). Both robots heard the whole
    follow-up ("Something short, please.") a second later, for bruno. Only bruno may answer."""
    bus, _, _, events, _ = setup()

    def heard(robot, uid, start, end, text, final, at):
        bus.publish(f'/{robot}/hearing/utterances', m.Utterance(uid, robot, start, end, transcript=text,
                                                                is_final=final), at=at)

    def decided(uid, start, end, probs, at):
        for r in ROBOTS:
            bus.publish('/conversation/addressee', m.AddresseeEstimate(
                uid, r.name, CANDS, probs, CANDS[probs.index(max(probs))], start, end, fused=True), at=at)

    for robot, uid in (('ada', 'ada/7'), ('bruno', 'bruno/4')):
        for at in (18.2, 18.7, 19.3):
            heard(robot, uid, 17.65, at - 0.1, 'Something short', False, at)
    heard('bruno', 'bruno/5', 17.71, 18.05, 'Something.', True, 18.52)
    decided('bruno/5', 17.71, 18.05, [0.79, 0.02, 0.0, 0.18], 18.76)
    heard('ada', 'ada/7', 17.65, 18.96, 'Something short, please.', True, 19.60)
    heard('bruno', 'bruno/4', 17.65, 18.96, 'Something short, please.', True, 19.68)
    decided('ada/7', 17.65, 18.96, [0.06, 0.84, 0.01, 0.09], 19.72)
    bus.run_until(21.0)
    assert grants(events) == ['bruno']

def test_a_robot_that_finds_itself_talking_over_an_earlier_peer_stops():
    """Whatever the protocol believes (here: no floor messages at all), of two robots speaking at once
    the later starter stops within one state message, and the earlier one talks on."""
    bus, floors, _, _, commands = setup()
    for t in (1.0, 1.12, 1.24, 1.36):
        bus.publish('/ada/speech/state', m.SpeechState('ada', True, 'a1', text='Once upon a time.', started=1.0,
                                                       progress=0.1), at=t)
    bus.publish('/bruno/speech/state', m.SpeechState('bruno', True, 'b1', text='Hello.', started=1.3, progress=0.0),
                at=1.3)
    bus.run_until(1.5)
    assert actions(commands, 'bruno') == [m.SpeechAction.CANCEL]
    assert actions(commands, 'ada') == []
    assert floors['bruno'].stats['speech over a peer cancelled'] == 1
    assert floors['bruno'].holder.robot == 'ada'


def test_no_grant_while_a_peer_is_audibly_speaking():
    bus, floors, _, events, _ = setup()
    for k in range(20):      # ada speaks from 1.0 to 3.4 s, its states arriving every 0.12 s
        bus.publish('/ada/speech/state', m.SpeechState('ada', True, 'a1', text='Once upon a time.', started=1.0,
                                                       progress=0.1), at=1.0 + 0.12 * k)
    bus.publish('/ada/speech/state', m.SpeechState('ada', False, 'a1', started=1.0, progress=1.0), at=3.45)
    publish_turn(bus, 'bruno', [0.05, 0.9, 0.03, 0.02], [0.05, 0.9, 0.03, 0.02], 2.3)
    bus.run_until(4.0)
    bruno_grants = [t for t, ev in events if ev.kind == m.FloorKind.GRANT and ev.robot == 'bruno']
    assert bruno_grants and bruno_grants[0] >= 3.45
    assert floors['bruno'].stats['grant held: a peer is speaking'] > 0
