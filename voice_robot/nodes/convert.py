"""Conversions between voice_robot.messages dataclasses and ROS 2 messages.

Every conversion from ROS validates what the algorithms rely on (sizes, formats, finite values) and
raises BadMessage with a reason; the node shell counts and logs it as a dropped input.
"""
from __future__ import annotations

import array
import math

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, PointStamped, Vector3
from sensor_msgs.msg import Image
from std_msgs.msg import Header

import voice_robot_interfaces.msg as vr
from voice_robot import messages as m


class BadMessage(ValueError):
    """A received message cannot be used; the reason is counted in diagnostics."""


def to_time(t: float) -> Time:
    sec, nanosec = m.stamp_parts(t)
    return Time(sec=sec, nanosec=nanosec)


def from_time(t: Time) -> float:
    return t.sec + t.nanosec * 1e-9


def header(stamp: float, frame_id: str = '') -> Header:
    return Header(stamp=to_time(stamp), frame_id=frame_id)


# --- audio -------------------------------------------------------------------------------------

def audio_to_ros(chunk: m.AudioChunk, frame_id: str = '') -> vr.AudioFrame:
    pcm = np.clip(np.nan_to_num(chunk.samples, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)
    data = (pcm * 32767.0).astype('<i2').tobytes()
    return vr.AudioFrame(header=header(chunk.stamp, frame_id), sequence=chunk.sequence % (2 ** 32),
                         sample_rate_hz=int(chunk.sample_rate), channels=int(chunk.channels),
                         sample_format='S16LE', data=array.array('B', data))


def audio_from_ros(msg: vr.AudioFrame, source: str = '') -> m.AudioChunk:
    if msg.channels == 0:
        raise BadMessage('zero channels')
    if msg.sample_rate_hz == 0:
        raise BadMessage('zero sample rate')
    if msg.sample_format == 'S16LE':
        width, dtype, scale = 2, '<i2', 1.0 / 32768.0
    elif msg.sample_format == 'F32LE':
        width, dtype, scale = 4, '<f4', 1.0
    else:
        raise BadMessage(f'unknown sample_format {msg.sample_format!r} (S16LE or F32LE)')
    raw = memoryview(msg.data).cast('B') if not isinstance(msg.data, (bytes, bytearray)) else msg.data
    if len(raw) % (width * msg.channels):
        raise BadMessage(f'{len(raw)} bytes is not a whole number of {msg.channels}-channel {msg.sample_format} frames')
    samples = np.frombuffer(raw, dtype=dtype).astype(np.float32) * scale
    samples = samples.reshape(-1, msg.channels)
    return m.AudioChunk(stamp=from_time(msg.header.stamp), sample_rate=int(msg.sample_rate_hz),
                        samples=samples, source=source, sequence=int(msg.sequence))


# --- camera ------------------------------------------------------------------------------------

_ENCODINGS = {'bgr8': 3, 'rgb8': 3, 'mono8': 1}


def image_to_ros(f: m.ImageFrame) -> Image:
    img = np.ascontiguousarray(f.image)
    channels = 1 if img.ndim == 2 else img.shape[2]
    return Image(header=header(f.stamp, f'{f.robot}/camera_optical'), height=img.shape[0], width=img.shape[1],
                 encoding=f.encoding, is_bigendian=0, step=img.shape[1] * channels,
                 data=array.array('B', img.tobytes()))


def image_from_ros(msg: Image, robot: str = '') -> m.ImageFrame:
    channels = _ENCODINGS.get(msg.encoding)
    if channels is None:
        raise BadMessage(f'unsupported image encoding {msg.encoding!r} (bgr8, rgb8 or mono8)')
    if msg.height == 0 or msg.width == 0:
        raise BadMessage('empty image')
    if msg.step < msg.width * channels or len(msg.data) < msg.step * msg.height:
        raise BadMessage(f'image data too short: {len(msg.data)} bytes for {msg.height}x{msg.step}')
    raw = np.frombuffer(memoryview(msg.data).cast('B'), dtype=np.uint8)[:msg.step * msg.height]
    rows = raw.reshape(msg.height, msg.step)[:, :msg.width * channels]
    img = rows.reshape(msg.height, msg.width, channels) if channels > 1 else rows.reshape(msg.height, msg.width)
    return m.ImageFrame(stamp=from_time(msg.header.stamp), robot=robot, image=img.copy(), encoding=msg.encoding)


# --- hearing -----------------------------------------------------------------------------------

def sources_to_ros(s: m.SoundSources) -> vr.SoundSourceArray:
    return vr.SoundSourceArray(header=header(s.stamp, f'{s.robot}/mic_array'), sources=[
        vr.SoundSource(track_id=src.track_id, azimuth_rad=float(src.azimuth), azimuth_std_rad=float(src.azimuth_std),
                       elevation_rad=float(src.elevation), energy_db=float(src.energy_db),
                       speech_probability=float(src.speech_probability), robot_name=src.robot_name)
        for src in s.sources])


def sources_from_ros(msg: vr.SoundSourceArray) -> m.SoundSources:
    robot = msg.header.frame_id.split('/')[0]
    return m.SoundSources(stamp=from_time(msg.header.stamp), robot=robot, sources=[
        m.SoundSource(track_id=s.track_id, azimuth=s.azimuth_rad, azimuth_std=s.azimuth_std_rad,
                      elevation=s.elevation_rad, energy_db=s.energy_db, speech_probability=s.speech_probability,
                      robot_name=s.robot_name) for s in msg.sources])


def utterance_to_ros(u: m.Utterance) -> vr.Utterance:
    return vr.Utterance(header=header(u.stamp, f'{u.robot}/mic_array'), utterance_id=u.utterance_id, robot=u.robot,
                        voice_id=u.voice_id, person_id=u.person_id, start=to_time(u.start), end=to_time(u.end),
                        azimuth_rad=float(u.azimuth), azimuth_std_rad=float(u.azimuth_std), transcript=u.transcript,
                        is_final=u.is_final, confidence=float(u.confidence),
                        end_of_turn_probability=float(u.end_of_turn_probability),
                        backchannel_probability=float(u.backchannel_probability))


def utterance_from_ros(msg: vr.Utterance) -> m.Utterance:
    start, end = from_time(msg.start), from_time(msg.end)
    if end < start:
        raise BadMessage(f'utterance {msg.utterance_id!r} ends before it starts')
    if not msg.utterance_id:
        raise BadMessage('utterance without utterance_id')
    return m.Utterance(utterance_id=msg.utterance_id, robot=msg.robot, start=start, end=end, voice_id=msg.voice_id,
                       person_id=msg.person_id, azimuth=msg.azimuth_rad, azimuth_std=msg.azimuth_std_rad,
                       transcript=msg.transcript, is_final=msg.is_final, confidence=msg.confidence,
                       end_of_turn_probability=msg.end_of_turn_probability,
                       backchannel_probability=msg.backchannel_probability, stamp=from_time(msg.header.stamp))


def voice_to_ros(v: m.VoiceIdentity) -> vr.VoiceIdentity:
    return vr.VoiceIdentity(header=header(v.stamp), voice_id=v.voice_id, origin_robot=v.origin_robot,
                            alias_of=v.alias_of, observations=int(v.observations),
                            embedding=array.array('f', np.asarray(v.embedding, dtype=np.float32).tobytes()))


def voice_from_ros(msg: vr.VoiceIdentity) -> m.VoiceIdentity:
    emb = np.asarray(msg.embedding, dtype=np.float32)
    if emb.size and not np.all(np.isfinite(emb)):
        raise BadMessage('non-finite voice embedding')
    return m.VoiceIdentity(voice_id=msg.voice_id, origin_robot=msg.origin_robot, embedding=emb,
                           observations=msg.observations, alias_of=msg.alias_of, stamp=from_time(msg.header.stamp))


# --- seeing / fusing ---------------------------------------------------------------------------

def faces_to_ros(f: m.FaceFrame) -> vr.FaceObservationArray:
    return vr.FaceObservationArray(header=header(f.stamp, f'{f.robot}/base_link'), robot=f.robot, faces=[
        vr.FaceObservation(face_id=o.face_id, bearing_rad=float(o.bearing), elevation_rad=float(o.elevation),
                           distance_m=float(o.distance), head_yaw_rad=float(o.head_yaw),
                           head_pitch_rad=float(o.head_pitch),
                           gaze_direction=Vector3(x=float(o.gaze_direction[0]), y=float(o.gaze_direction[1]),
                                                  z=float(o.gaze_direction[2])),
                           mouth_open=float(o.mouth_open), confidence=float(o.confidence), looked_at=o.looked_at,
                           looked_at_probability=float(o.looked_at_probability)) for o in f.faces])


def faces_from_ros(msg: vr.FaceObservationArray) -> m.FaceFrame:
    faces = []
    for o in msg.faces:
        values = (o.bearing_rad, o.distance_m, o.head_yaw_rad, o.head_pitch_rad)
        if not all(math.isfinite(v) for v in values):
            raise BadMessage(f'face {o.face_id!r} has non-finite values')
        if o.distance_m <= 0:
            raise BadMessage(f'face {o.face_id!r} at non-positive distance')
        faces.append(m.FaceObservation(face_id=o.face_id, bearing=o.bearing_rad, distance=o.distance_m,
                                       elevation=o.elevation_rad, head_yaw=o.head_yaw_rad,
                                       head_pitch=o.head_pitch_rad,
                                       gaze_direction=(o.gaze_direction.x, o.gaze_direction.y, o.gaze_direction.z),
                                       mouth_open=o.mouth_open, confidence=o.confidence, looked_at=o.looked_at,
                                       looked_at_probability=o.looked_at_probability))
    return m.FaceFrame(stamp=from_time(msg.header.stamp), robot=msg.robot, faces=faces)


def persons_to_ros(p: m.Persons) -> vr.PersonArray:
    return vr.PersonArray(header=header(p.stamp, 'map'), robot=p.robot, persons=[
        vr.Person(person_id=q.person_id, position=Point(x=float(q.position[0]), y=float(q.position[1]),
                                                         z=float(q.position[2])),
                  position_std_m=float(q.position_std), location_confidence=float(q.location_confidence),
                  voice_id=q.voice_id, voice_confidence=float(q.voice_confidence), face_ids=list(q.face_ids),
                  face_confidence=float(q.face_confidence), looked_at=q.looked_at,
                  looked_at_probability=float(q.looked_at_probability), is_speaking=q.is_speaking)
        for q in p.persons])


def persons_from_ros(msg: vr.PersonArray) -> m.Persons:
    out = []
    for q in msg.persons:
        pos = (q.position.x, q.position.y, q.position.z)
        if not all(math.isfinite(v) for v in pos):
            raise BadMessage(f'person {q.person_id!r} has a non-finite position')
        out.append(m.Person(person_id=q.person_id, position=pos, position_std=q.position_std_m,
                            location_confidence=q.location_confidence, voice_id=q.voice_id,
                            voice_confidence=q.voice_confidence, face_ids=list(q.face_ids),
                            face_confidence=q.face_confidence, looked_at=q.looked_at,
                            looked_at_probability=q.looked_at_probability, is_speaking=q.is_speaking))
    return m.Persons(stamp=from_time(msg.header.stamp), robot=msg.robot, persons=out)


# --- conversing --------------------------------------------------------------------------------

def addressee_to_ros(a: m.AddresseeEstimate) -> vr.AddresseeEstimate:
    return vr.AddresseeEstimate(
        header=header(a.stamp), utterance_id=a.utterance_id, robot=a.robot, fused=a.fused,
        utterance_start=to_time(a.utterance_start), utterance_end=to_time(a.utterance_end), voice_id=a.voice_id,
        transcript=a.transcript, candidates=list(a.candidates), probabilities=[float(p) for p in a.probabilities],
        decision=a.decision,
        evidence=[vr.CueEvidence(cue=e.cue, candidate=e.candidate, value=float(e.value),
                                 contribution=float(e.contribution)) for e in a.evidence])


def addressee_from_ros(msg: vr.AddresseeEstimate) -> m.AddresseeEstimate:
    probs = [float(p) for p in msg.probabilities]
    if len(probs) != len(msg.candidates):
        raise BadMessage(f'{len(msg.candidates)} candidates but {len(probs)} probabilities')
    if not all(math.isfinite(p) and 0 <= p <= 1 for p in probs):
        raise BadMessage('addressee probabilities outside [0, 1]')
    return m.AddresseeEstimate(
        utterance_id=msg.utterance_id, robot=msg.robot, candidates=list(msg.candidates), probabilities=probs,
        decision=msg.decision, utterance_start=from_time(msg.utterance_start),
        utterance_end=from_time(msg.utterance_end), voice_id=msg.voice_id, transcript=msg.transcript,
        evidence=[m.CueEvidence(e.cue, e.candidate, e.value, e.contribution) for e in msg.evidence],
        fused=msg.fused, stamp=from_time(msg.header.stamp))


def floor_to_ros(f: m.FloorEvent) -> vr.FloorEvent:
    return vr.FloorEvent(header=header(f.stamp), kind=int(f.kind), robot=f.robot, utterance_id=f.utterance_id,
                         utterance_start=to_time(f.utterance_start), utterance_end=to_time(f.utterance_end),
                         score=float(f.score), lease_until=to_time(f.lease_until), sequence=int(f.sequence))


def floor_from_ros(msg: vr.FloorEvent) -> m.FloorEvent:
    try:
        kind = m.FloorKind(msg.kind)
    except ValueError:
        raise BadMessage(f'unknown floor event kind {msg.kind}') from None
    if not msg.robot:
        raise BadMessage('floor event without robot')
    return m.FloorEvent(kind=kind, robot=msg.robot, utterance_id=msg.utterance_id,
                        utterance_start=from_time(msg.utterance_start), utterance_end=from_time(msg.utterance_end),
                        score=msg.score, lease_until=from_time(msg.lease_until), sequence=msg.sequence,
                        stamp=from_time(msg.header.stamp))


def turn_to_ros(t: m.DialogueTurn) -> vr.DialogueTurn:
    return vr.DialogueTurn(header=header(t.stamp), speaker=t.speaker, addressee=t.addressee, text=t.text,
                           start=to_time(t.start), end=to_time(t.end), utterance_id=t.utterance_id)


def turn_from_ros(msg: vr.DialogueTurn) -> m.DialogueTurn:
    return m.DialogueTurn(speaker=msg.speaker, addressee=msg.addressee, text=msg.text, start=from_time(msg.start),
                          end=from_time(msg.end), utterance_id=msg.utterance_id, stamp=from_time(msg.header.stamp))


# --- acting ------------------------------------------------------------------------------------

def speech_command_to_ros(c: m.SpeechCommand) -> vr.SpeechCommand:
    return vr.SpeechCommand(header=header(c.stamp), action=int(c.action), kind=int(c.kind), speech_id=c.speech_id,
                            text=c.text, final=c.final, in_reply_to=c.in_reply_to,
                            reply_to_start=to_time(c.reply_to_start), reply_to_end=to_time(c.reply_to_end),
                            voice=c.voice)


def speech_command_from_ros(msg: vr.SpeechCommand) -> m.SpeechCommand:
    try:
        action, kind = m.SpeechAction(msg.action), m.SpeechKind(msg.kind)
    except ValueError:
        raise BadMessage(f'unknown speech action {msg.action} or kind {msg.kind}') from None
    return m.SpeechCommand(action=action, speech_id=msg.speech_id, text=msg.text, kind=kind, final=msg.final,
                           in_reply_to=msg.in_reply_to, reply_to_start=from_time(msg.reply_to_start),
                           reply_to_end=from_time(msg.reply_to_end), voice=msg.voice, stamp=from_time(msg.header.stamp))


def speech_state_to_ros(s: m.SpeechState) -> vr.SpeechState:
    return vr.SpeechState(header=header(s.stamp), robot=s.robot, state=1 if s.speaking else 0, speech_id=s.speech_id,
                          kind=int(s.kind), text=s.text, progress=float(s.progress), started=to_time(s.started),
                          in_reply_to=s.in_reply_to, reply_to_start=to_time(s.reply_to_start),
                          reply_to_end=to_time(s.reply_to_end), ducked=s.ducked, cancelled=s.cancelled)


def speech_state_from_ros(msg: vr.SpeechState) -> m.SpeechState:
    try:
        kind = m.SpeechKind(msg.kind)
    except ValueError:
        raise BadMessage(f'unknown speech kind {msg.kind}') from None
    return m.SpeechState(robot=msg.robot, speaking=msg.state == 1, speech_id=msg.speech_id, kind=kind,
                         text=msg.text, progress=msg.progress, started=from_time(msg.started),
                         in_reply_to=msg.in_reply_to, reply_to_start=from_time(msg.reply_to_start),
                         reply_to_end=from_time(msg.reply_to_end), ducked=msg.ducked, cancelled=msg.cancelled,
                         stamp=from_time(msg.header.stamp))


def motion_to_ros(c: m.MotionCommand) -> vr.MotionCommand:
    target = PointStamped(header=header(c.stamp, 'map'),
                          point=Point(x=float(c.target[0]), y=float(c.target[1]), z=float(c.target[2])))
    return vr.MotionCommand(header=header(c.stamp), robot=c.robot, action=int(c.action), target=target,
                            gesture=c.gesture, duration_s=float(c.duration_s), amplitude=float(c.amplitude))


def motion_from_ros(msg: vr.MotionCommand) -> m.MotionCommand:
    try:
        action = m.MotionAction(msg.action)
    except ValueError:
        raise BadMessage(f'unknown motion action {msg.action}') from None
    p = msg.target.point
    return m.MotionCommand(robot=msg.robot, action=action, target=(p.x, p.y, p.z), gesture=msg.gesture,
                           duration_s=msg.duration_s, amplitude=msg.amplitude, stamp=from_time(msg.header.stamp))


# dataclass type -> (ROS type, to_ros(obj, robot), from_ros(msg, robot))
CONVERTERS = {
    m.AudioChunk: (vr.AudioFrame, lambda c, robot: audio_to_ros(c, f'{robot}/mic_array'),
                   lambda msg, robot: audio_from_ros(msg, robot)),
    m.ImageFrame: (Image, lambda f, robot: image_to_ros(f), lambda msg, robot: image_from_ros(msg, robot)),
    m.SoundSources: (vr.SoundSourceArray, lambda s, robot: sources_to_ros(s), lambda msg, robot: sources_from_ros(msg)),
    m.Utterance: (vr.Utterance, lambda u, robot: utterance_to_ros(u), lambda msg, robot: utterance_from_ros(msg)),
    m.VoiceIdentity: (vr.VoiceIdentity, lambda v, robot: voice_to_ros(v), lambda msg, robot: voice_from_ros(msg)),
    m.FaceFrame: (vr.FaceObservationArray, lambda f, robot: faces_to_ros(f), lambda msg, robot: faces_from_ros(msg)),
    m.Persons: (vr.PersonArray, lambda p, robot: persons_to_ros(p), lambda msg, robot: persons_from_ros(msg)),
    m.AddresseeEstimate: (vr.AddresseeEstimate, lambda a, robot: addressee_to_ros(a),
                          lambda msg, robot: addressee_from_ros(msg)),
    m.FloorEvent: (vr.FloorEvent, lambda f, robot: floor_to_ros(f), lambda msg, robot: floor_from_ros(msg)),
    m.DialogueTurn: (vr.DialogueTurn, lambda t, robot: turn_to_ros(t), lambda msg, robot: turn_from_ros(msg)),
    m.SpeechCommand: (vr.SpeechCommand, lambda c, robot: speech_command_to_ros(c),
                      lambda msg, robot: speech_command_from_ros(msg)),
    m.SpeechState: (vr.SpeechState, lambda s, robot: speech_state_to_ros(s),
                    lambda msg, robot: speech_state_from_ros(msg)),
    m.MotionCommand: (vr.MotionCommand, lambda c, robot: motion_to_ros(c), lambda msg, robot: motion_from_ros(msg)),
}
