"""Linguistic addressing cues from a transcript: vocatives, third-person mentions, group words.

"Ada, what time is it?" and "hey Ada" address Ada; "I think Ada got it wrong" and "let's ask him"
talk about a robot. Robot names are short and ASR mishears them ("Aida", "Bruneau"), so names are
matched phonetically (metaphone key) or by Jaro-Winkler similarity, not by exact spelling.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import jellyfish

# Words that, right before a name, make it a vocative ("hey Ada").
VOCATIVE_PREFIX = {'hey', 'hi', 'hello', 'ok', 'okay', 'oh', 'excuse', 'sorry', 'thanks', 'thank', 'yo', 'please',
                   'well', 'so', 'and', 'morning', 'evening', 'dear'}
# Words that, right before a name, make it the object or topic of a sentence ("ask Ada").
MENTION_PREFIX = {'ask', 'asked', 'tell', 'told', 'to', 'with', 'about', 'than', 'like', 'think', 'thought',
                  'that', 'if', 'when', 'because', 'and', 'or', 'of', 'from', 'for', 'by', 'at', 'is', 'was',
                  'believe', 'guess', 'said', 'says', 'know', 'knows', 'maybe', 'whether', 'where', 'the', 'poor'}
# Words that, right after a name, make it the subject of a third-person clause ("Ada got it wrong").
THIRD_PERSON_VERB = {'is', 'was', "isn't", "wasn't", 'has', 'had', "hasn't", 'got', 'gets', 'does', 'did', "doesn't",
                     "didn't", 'said', 'says', 'told', 'tells', 'thinks', 'thought', 'knows', 'knew', 'seems',
                     'looks', 'sounds', 'will', 'would', 'can', 'could', 'should', 'might', 'must', 'usually',
                     'always', 'never', 'often', 'really', 'just', 'also', 'probably', 'made', 'makes', 'gave',
                     'went', 'broke', "'s", 'and', 'or', 'keeps', 'kept', 'forgot', 'likes', 'loves', 'hates',
                     'answered', 'answers', 'helped', 'helps', 'needs', 'wants'}
AUXILIARIES = {'will', 'would', 'can', 'could', 'should', 'shall', 'may', 'might', 'must', 'do', 'does', 'did',
               'is', 'are', 'was', 'were', 'have', 'has'}
MODALS = {'will', 'would', 'can', 'could', 'should', 'shall', 'may', 'might', 'must'}
SUBJECT_PRONOUNS = {'you', 'it', 'we', 'i', 'there', 'they'}


def text_is_question(tokens: list[str]) -> bool:
    return bool(tokens) and tokens[-1] == '?'


# Group address: "can one of you", "anyone", "you two".
GROUP_PATTERNS = [r'\bone of you\b', r'\bany ?one of you\b', r'\banyone\b', r'\banybody\b', r'\bsomeone\b',
                  r'\bsomebody\b', r'\byou two\b', r'\byou three\b', r'\bboth of you\b', r'\ball of you\b',
                  r'\byou guys\b', r'\byou all\b', r"\by'all\b", r'\beveryone\b', r'\beverybody\b',
                  r'\beither of you\b', r'\bwhich of you\b', r'\brobots\b', r'\byou both\b']
SECOND_PERSON = re.compile(r"\b(you|your|yours|you're|you'll|you've|yourself|can you|could you|would you)\b")
REQUEST = re.compile(r"^(please |can |could |would |will |do |does |did |is |are |what|where|when|who|why|how|"
                     r"tell |give |show |bring |help |remind |call |find |turn |stop|wait|let me|i need|i want|"
                     r"i would like|i'd like)")
THIRD_PERSON_PRONOUN = re.compile(r"\b(ask (him|her|it|them)|(he|she|it)('s| is| was| got| has| said| knows))\b")
HESITATION_START = re.compile(r'^(hmm+|hm+|um+|uh+|er+|ah+|oh+|well)\b')
FIRST_PERSON_MUSING = re.compile(r'\b(where did i|did i|i wonder|where is my|where are my|i forgot)\b')
# How people open an interruption of someone talking: words a garbled partial rarely invents.
INTERRUPTION_START = re.compile(r"^(wait|stop|sorry|excuse me|hold on|hang on|pardon|no|actually|one moment|"
                                r"one sec(ond)?|just a (moment|second|minute)|hey|enough|listen|quiet)\b")
# Asking something of whoever talks: the questions that cut in. A bare "?" or "is"/"do" opening is not
# enough: garbled residue of a "yeah" often comes out as "You know?" (voice-robot bench barge-in).
INTERRUPTION_ASK = re.compile(r"^(what|where|when|who|why|how|can you|could you|would you|will you|please)\b")
BACKCHANNEL_WORDS = {'mm', 'mmhmm', 'mm-hmm', 'mhm', 'uh-huh', 'uhhuh', 'yeah', 'yes', 'right', 'ok', 'okay',
                     'sure', 'i see', 'hmm', 'yep', 'uh huh', 'mm hmm', 'got it', 'aha', 'ah'}


@dataclass
class NameCues:
    vocative: float = 0.0      # 0..1, the robot is called by name
    mention: float = 0.0       # 0..1, the robot is talked about
    positions: list[int] = field(default_factory=list)


@dataclass
class TextCues:
    names: dict[str, NameCues]
    group: float               # group address words
    second_person: float       # "you", "can you", requests
    request: float             # question or request form
    third_person_pronoun: float
    musing: float              # thinking aloud: hesitation + first-person musing
    words: int
    backchannel_like: float    # the whole text is a listener response
    interrupting: float = 0.0  # opens like an interruption, asks a wh- or can-you question, or calls a robot


TOKEN = re.compile(r"[a-z]+(?:['-][a-z]+)*|[,.?!;:]")


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


@lru_cache(maxsize=4096)
def name_similarity(word: str, name: str) -> float:
    """How likely an ASR word is this robot name (1 exact .. 0 unrelated)."""
    word, name = word.lower(), name.lower()
    if word == name:
        return 1.0
    if len(word) < 2:
        return 0.0
    jw = jellyfish.jaro_winkler_similarity(word, name)
    same_sound = jellyfish.metaphone(word) == jellyfish.metaphone(name)
    if same_sound and jw >= 0.75:
        return 0.9
    if jw >= 0.9 and abs(len(word) - len(name)) <= 2:
        return 0.8
    return 0.0


def find_names(tokens: list[str], names: dict[str, list[str]]) -> dict[str, list[tuple[int, float]]]:
    """robot -> [(token index, similarity)] for every token that sounds like one of its names."""
    found: dict[str, list[tuple[int, float]]] = {r: [] for r in names}
    for i, tok in enumerate(tokens):
        if not tok[0].isalpha() or len(tok) < 2:
            continue
        if tok.endswith("'s"):
            tok = tok[:-2]
        best_robot, best = None, 0.0
        for robot, aliases in names.items():
            for alias in aliases:
                s = name_similarity(tok, alias)
                if s > best:
                    best_robot, best = robot, s
        if best_robot is not None and best >= 0.8:
            found[best_robot].append((i, best))
    return found


def classify_name(tokens: list[str], i: int) -> tuple[float, float]:
    """(vocative, mention) strength of the name at token i."""
    if tokens[i].endswith("'s"):
        return 0.05, 0.9          # possessive: "Ada's answer"
    prev = tokens[i - 1] if i > 0 else None
    prev2 = tokens[i - 2] if i > 1 else None
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    nxt2 = tokens[i + 2] if i + 2 < len(tokens) else None
    at_start = prev is None or prev in {',', '.', '?', '!', ';', ':'}
    at_end = nxt is None or nxt in {'.', '?', '!'}
    # "Ada, ..." / "Ada?" / "hey Ada" / "..., Ada?" : vocative
    if at_start and nxt in {',', '?', '!', ':'}:
        return 1.0, 0.0
    if prev in VOCATIVE_PREFIX and (prev2 is None or prev2 in {',', '.', '?', '!'} or prev in {'hey', 'hi', 'hello'}):
        return 0.95, 0.0
    if prev == ',' and at_end:
        return 0.9, 0.0
    if prev == 'me' and prev2 == 'excuse':
        return 0.95, 0.0
    # "Bruno will it rain" / "Bruno can you": ASR often drops the comma after a vocative, and a
    # sentence-initial name before an auxiliary reads both ways; gaze and context must decide.
    if at_start and nxt in AUXILIARIES and (nxt2 in SUBJECT_PRONOUNS or text_is_question(tokens)):
        return 0.7, 0.2
    if at_start and nxt in MODALS:
        return 0.45, 0.45
    # "Ada got the weather wrong", "Bruno is usually better": subject of a third-person clause.
    if nxt in THIRD_PERSON_VERB or (nxt and nxt.endswith("'s")):
        return 0.05, 0.9
    if prev in MENTION_PREFIX:
        return 0.05, 0.85
    if at_start and nxt is not None:
        # "Ada what is the time" (ASR dropped the comma): a question or imperative follows.
        if nxt in {'what', 'where', 'when', 'who', 'why', 'how', 'can', 'could', 'would', 'will', 'do', 'does',
                   'is', 'are', 'please', 'tell', 'give', 'show', 'remind', 'call', 'help', 'stop', 'wait', 'i'}:
            return 0.8, 0.1
        return 0.5, 0.3
    if at_end:
        return 0.6, 0.3
    return 0.2, 0.6


def text_cues(text: str, names: dict[str, list[str]]) -> TextCues:
    """All linguistic cues of one utterance; ``names`` maps each robot to the names people use for it."""
    tokens = tokenize(text)
    words = [t for t in tokens if t[0].isalpha()]
    lowered = ' '.join(words)
    found = find_names(tokens, names)
    cues: dict[str, NameCues] = {}
    for robot, hits in found.items():
        nc = NameCues()
        for i, sim in hits:
            voc, men = classify_name(tokens, i)
            nc.vocative = max(nc.vocative, voc * sim)
            nc.mention = max(nc.mention, men * sim)
            nc.positions.append(i)
        cues[robot] = nc
    group = 1.0 if any(re.search(p, lowered) for p in GROUP_PATTERNS) else 0.0
    second = 1.0 if SECOND_PERSON.search(lowered) else 0.0
    clauses = [c.strip() for c in re.split(r'[,.?!;:]', text.lower()) if c.strip()]
    request = 1.0 if (any(REQUEST.search(c) for c in clauses) or text.strip().endswith('?')) else 0.0
    pronoun = 1.0 if THIRD_PERSON_PRONOUN.search(lowered) else 0.0
    musing = 0.0
    if HESITATION_START.search(lowered):
        musing += 0.5
    if FIRST_PERSON_MUSING.search(lowered):
        musing += 0.5
    bc_text = lowered.replace('-', ' ').strip()
    backchannel_like = 1.0 if (bc_text in BACKCHANNEL_WORDS or lowered in BACKCHANNEL_WORDS) else 0.0
    interrupting = 1.0 if (any(INTERRUPTION_START.search(c) or INTERRUPTION_ASK.search(c) for c in clauses)
                           or any(nc.vocative >= 0.5 for nc in cues.values())) else 0.0
    return TextCues(names=cues, group=group, second_person=second, request=request,
                    third_person_pronoun=pronoun, musing=min(musing, 1.0), words=len(words),
                    backchannel_like=backchannel_like, interrupting=interrupting)
