"""The offline brain: a deterministic stand-in for a language model, with no network and no key.

It answers the newest line of the conversation with short, on-topic replies chosen by simple rules
(weather, time, opening hours, directions, capitals, reminders, taxis, lost items, the menu, the
restroom, thanks, greetings; stories and explanations get several sentences; anything else gets a
short reply that names the topic). It reads earlier lines for follow-ups ("I last had them in the
kitchen" after a lost-item request), mentions the robot's own name when introducing itself, and asks
for gestures through the same tool-call path as a real model. ``think_time_s`` delays the first
sentence on the stage clock (simulated time in the eval), which exercises fillers without sleeping.
"""
from __future__ import annotations

import re
from typing import Callable

from voice_robot.conversing.config import LlmConfig
from voice_robot.conversing.llm import GESTURE_TOOL, ChatBackend, ReplyHandle, ToolCall, parse_line

_CAPITALS = {
    'france': 'Paris', 'germany': 'Berlin', 'italy': 'Rome', 'spain': 'Madrid', 'portugal': 'Lisbon',
    'japan': 'Tokyo', 'china': 'Beijing', 'india': 'New Delhi', 'canada': 'Ottawa', 'australia': 'Canberra',
    'brazil': 'Brasilia', 'mexico': 'Mexico City', 'egypt': 'Cairo', 'kenya': 'Nairobi', 'russia': 'Moscow',
    'the united kingdom': 'London', 'england': 'London', 'the uk': 'London', 'ireland': 'Dublin',
    'the united states': 'Washington, D.C.', 'the usa': 'Washington, D.C.', 'america': 'Washington, D.C.',
    'switzerland': 'Bern', 'austria': 'Vienna', 'belgium': 'Brussels', 'the netherlands': 'Amsterdam',
    'netherlands': 'Amsterdam', 'sweden': 'Stockholm', 'norway': 'Oslo', 'denmark': 'Copenhagen',
    'finland': 'Helsinki', 'poland': 'Warsaw', 'greece': 'Athens', 'turkey': 'Ankara', 'argentina': 'Buenos Aires',
    'south korea': 'Seoul', 'korea': 'Seoul', 'vietnam': 'Hanoi', 'thailand': 'Bangkok', 'peru': 'Lima',
    'chile': 'Santiago', 'colombia': 'Bogota', 'nigeria': 'Abuja', 'morocco': 'Rabat', 'new zealand': 'Wellington',
}

_PLACES = ('kitchen', 'office', 'car', 'bathroom', 'bedroom', 'living room', 'hall', 'hallway', 'desk', 'lobby',
           'garden', 'bag', 'coat', 'jacket', 'pocket', 'meeting room', 'cafeteria', 'reception', 'table')

_LOST_ITEMS = ('keys', 'key', 'badge', 'wallet', 'phone', 'glasses', 'umbrella', 'bag', 'purse', 'card', 'ticket',
               'jacket', 'coat', 'laptop', 'notebook', 'pen', 'watch', 'ring')

_STOPWORDS = {'a', 'an', 'the', 'is', 'are', 'was', 'were', 'be', 'do', 'does', 'did', 'you', 'me', 'i', 'we', 'it',
              'to', 'of', 'and', 'or', 'in', 'on', 'at', 'for', 'with', 'can', 'could', 'would', 'will', 'please',
              'what', 'who', 'how', 'why', 'when', 'which', 'that', 'this', 'there', 'here', 'tell', 'know', 'think',
              'about', 'so', 'just', 'maybe', 'some', 'any', 'my', 'your', 'us', 'our', 'hey', 'okay', 'ok', 'um',
              'uh', 'well', 'really', 'have', 'has', 'had', 'get', 'got', 'let', 'lets', 'let\'s', 'like', 'if', 'not'}

_LEAD_INS = re.compile(
    r"^(?:(?:so|well|and|but|okay|ok|hey|um|uh|please|excuse me|sorry)\s+)*"
    r"(?:(?:can|could|would|will) you (?:please )?(?:tell me|explain|say) |do you know |"
    r"what do you think (?:of|about) |what about |how about |tell me (?:about )?|"
    r"(?:did|do|have|are|were|would) you (?:ever )?(?:see|seen|hear|heard|know|watch|watched|like|want|think|read) |"
    r"i (?:want|would like|wonder|was wondering) (?:to know )?(?:about )?)?")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _has(text: str, *patterns: str) -> bool:
    return any(re.search(p, text) for p in patterns)


def _second_person(phrase: str) -> str:
    """'my keys' -> 'your keys': speak the person's words back to them."""
    swaps = {'my': 'your', 'me': 'you', 'i': 'you', "i'm": "you're", 'mine': 'yours', 'myself': 'yourself',
             'am': 'are', 'our': 'your', 'we': 'you', 'us': 'you'}
    return ' '.join(swaps.get(w, w) for w in phrase.split())


def _day_phrase(text: str) -> str:
    for phrase in ('this afternoon', 'this evening', 'this morning', 'tonight', 'tomorrow', 'today', 'this weekend',
                   'next week'):
        if phrase in text:
            return phrase
    return 'today'


class OfflineBrain(ChatBackend):
    """Rule-based replies, computed at once and released after ``think_time_s`` of stage time."""

    name = 'offline'

    def __init__(self, config: LlmConfig | None = None, robot_name: str = ''):
        super().__init__()
        self.config = config or LlmConfig()
        self.robot_name = robot_name

    def start(self, messages, tools=None, clock=None) -> ReplyHandle:
        self.stats['requests'] += 1
        allowed = _allowed_gestures(tools)
        text, history = _latest_user_text(messages)
        sentences, gesture = self.reply(text, history)
        calls = [ToolCall(GESTURE_TOOL, {'name': gesture})] if gesture and gesture in allowed else []
        return OfflineHandle(sentences, calls, clock, self.config.think_time_s)

    # --- the rules ---------------------------------------------------------------------------
    def reply(self, text: str, history: list[str] = ()) -> tuple[list[str], str]:
        """(sentences, gesture or '') for what a person said; ``history`` are earlier lines, oldest first."""
        name = self.robot_name.capitalize() if self.robot_name else 'a robot'
        raw = ' '.join((text or '').split())
        low = self._strip_address(raw.lower())
        low = re.sub(r"[^a-z0-9' ,.?!-]", ' ', low)
        flat = ' '.join(_words(low))
        if not flat:
            return ['Sorry, I did not catch that. Could you say it again?'], ''
        greeting = re.match(r'^(hello|hi|hey|good (?:morning|afternoon|evening))\b[\s,.!]*(.*)$', flat)
        if greeting and len(_words(greeting.group(2))) >= 3 and 'how are you' not in greeting.group(2):
            # "Good morning, where is..." : greet back, then answer the request itself.
            rest, gesture = self.reply(greeting.group(2), history)
            hello = greeting.group(1).capitalize() + '!'
            return [hello] + rest, gesture

        if _has(flat, r'\bhow are you\b', r'^(hello|hi|hey|hiya|howdy|greetings)$'):
            return self._greeting(flat, name), 'wave'
        if _has(flat, r'\b(story|tale)\b'):
            return self._story(flat), 'nod'
        if _has(flat, r'^(explain|why|how does|how do|how is|how are)\b', r'\bexplain\b', r'\bhow (does|do) .* work\b'):
            return self._explanation(flat), ''
        if _has(flat, r'\b(thank|thanks|cheers)\b'):
            return ['You are welcome, I am glad I could help.'], 'nod'
        if _has(flat, r"\b(what'?s|what is) your name\b", r'\bwho are you\b', r'\bintroduce yourself\b'):
            return [f'I am {name}, one of the robots here.', 'I can help with directions, reminders and more.'], 'wave'
        if _has(flat, r'\bcapital\b'):
            return self._capital(flat), ''
        if _has(flat, r'\bremind\b', r'\breminder\b'):
            return self._reminder(flat), 'nod'
        if _has(flat, r'\b(taxi|cab|uber)\b'):
            return ['Of course, I will call a taxi for you.',
                    'It should be at the main entrance in about ten minutes.'], 'nod'
        if _has(flat, r'\b(weather|rain|raining|rainy|sunny|sun|forecast|snow|snowing|umbrella|temperature|cloudy|'
                      r'windy|storm)\b', r'\b(cold|warm|hot) (outside|today|tomorrow)\b'):
            return self._weather(flat), ''
        if _has(flat, r'\b(restroom|restrooms|toilet|toilets|bathroom|washroom|loo|lavatory)\b'):
            return ['The restrooms are down the hall on the left, next to the elevators.'], 'point'
        if _has(flat, r'\b(menu|hungry|eat|lunch|dinner|breakfast|order|dish|dishes|vegetarian|drink|coffee|tea)\b'):
            return ['Here is the menu: today there is tomato soup, pasta and a vegetable curry.',
                    'To drink we have coffee, tea and fresh juice.'], 'nod'
        if _has(flat, r'\b(lost|lose|losing|misplaced|missing)\b', r"\b(can'?t|cannot|could not|couldn'?t) find\b",
                r'\bfind my\b', r'\bwhere did i (put|leave)\b', r'\bhave you seen my\b'):
            return self._lost(flat), ''
        if _has(flat, r'\bwhat time (does|do|is) .*\b(open|close|closes|opens|start|starts|end|ends)\b',
                r'\b(open|close|opening|closing) (hours|time)\b', r'\bwhen (does|do|is) .*\b(open|close|closes|opens)\b'):
            return self._hours(flat), ''
        if _has(flat, r'\bwhat time is it\b', r"\bwhat'?s the time\b", r'\bthe time\b', r'\bwhat time\b'):
            return ['I have no reliable clock in here, I am afraid.',
                    'The screen by the entrance always shows the time.'], ''
        if _has(flat, r'\bwhere (is|are|can i find)\b', r'\bwhere (the|a|an) [a-z ]+ (is|are)\b',
                r'\bhow (do|can) i get to\b', r'\bway to\b',
                r'\bdirections?\b', r'\bfind the\b'):
            return self._directions(flat), 'point'
        follow_up = self._follow_up(flat, history)
        if follow_up:
            return follow_up, 'nod'
        if _has(flat, r'^(hello|hi|hey|hiya|howdy|greetings)\b', r'\bgood (morning|afternoon|evening)\b',
                r'\bnice to meet you\b', r'\bhow are you\b'):
            return self._greeting(flat, name), 'wave'
        if _has(flat, r'^(yes|yeah|yep|sure|right|ok|okay|great|perfect|fine|cool|alright)\b'):
            return ['Great, let me know if you need anything else.'], 'nod'
        if _has(flat, r'^(no|nope|not really)\b'):
            return ['No problem, I am here if you need me.'], ''
        return self._unknown(flat), ''

    def _strip_address(self, text: str) -> str:
        """'Ada, what is...' -> 'what is...': the robot's name is not the topic."""
        if self.robot_name:
            text = re.sub(rf"^\s*(hey |hi |hello |ok |okay )?{re.escape(self.robot_name.lower())}\b[\s,.!?]*", r'\1',
                          text)
            text = re.sub(rf"[\s,]+{re.escape(self.robot_name.lower())}\s*([?.!]*)\s*$", r'\1', text)
        return text.strip()

    def _greeting(self, text: str, name: str) -> list[str]:
        match = re.search(r'\bgood (morning|afternoon|evening)\b', text)
        hello = f'Good {match.group(1)}!' if match else 'Hello!'
        if 'how are you' in text:
            return [hello, f'I am {name}, and I am doing well, thank you.', 'How can I help you?']
        return [f'{hello} I am {name}.', 'How can I help you?']

    def _capital(self, text: str) -> list[str]:
        match = re.search(r'\bcapital (?:city )?of ([a-z ]+)', text)
        country = (match.group(1).strip() if match else '').removesuffix(' please').strip()
        for key in sorted(_CAPITALS, key=len, reverse=True):
            if country == key or country.startswith(key + ' ') or country == key.removeprefix('the '):
                return [f'The capital of {key.removeprefix("the ").title()} is {_CAPITALS[key]}.']
        if country:
            return [f'I am not sure about the capital of {country.title()}.', 'I can look it up for you later.']
        return ['Which country do you mean?']

    def _reminder(self, text: str) -> list[str]:
        match = re.search(r'\bremind (?:me|us)(?: (?:to|that|about))? (.+)$', text)
        task = match.group(1).strip() if match else ''
        when = ''
        for phrase in ('tomorrow morning', 'tomorrow', 'tonight', 'this afternoon', 'this evening', 'later', 'next week'):
            if phrase in task:
                when = phrase
                task = task.replace(phrase, '').strip()
                break
        time_match = re.search(r'\b(at|in) ([a-z0-9 ]+(?:minutes?|hours?|o\'?clock|am|pm|[0-9]))\b', task)
        if time_match and not when:
            when = time_match.group(0)
            task = task.replace(when, '').strip()
        task = _second_person(task) or 'do that'
        return [f'Sure, I will remind you to {task}{" " + when if when else ""}.']

    def _weather(self, text: str) -> list[str]:
        day = _day_phrase(text)
        if _has(text, r'\b(rain|raining|rainy|umbrella|storm)\b'):
            return [f'The forecast for {day} shows a small chance of light rain.',
                    'An umbrella would not hurt.']
        if _has(text, r'\b(sunny|sun)\b'):
            return [f'Yes, {day} should be mostly sunny with a few clouds.']
        if _has(text, r'\bsnow'):
            return [f'No snow is expected {day}, it stays mild.']
        return [f'The forecast for {day} is mild and mostly dry, around eighteen degrees.']

    def _hours(self, text: str) -> list[str]:
        match = re.search(r'\b(?:does|do|is) (?:the )?([a-z ]+?) (?:open|close|closes|opens|start|starts|end|ends)\b',
                          text)
        place = match.group(1).strip() if match else 'it'
        place = 'it' if place in ('it', 'they', '') else f'the {place}'
        if _has(text, r'\b(close|closes|closing|end|ends)\b'):
            return [f'{place.capitalize()} closes at six in the evening.']
        return [f'{place.capitalize()} opens at eight in the morning.']

    def _directions(self, text: str) -> list[str]:
        match = re.search(r'\bwhere (?:the|a|an) ([a-z ]+?) (?:is|are)\b', text) or re.search(
            r'\b(?:where (?:is|are|can i find)|how (?:do|can) i get to|way to|find|directions to)'
            r' (?:the |a |an |my )?([a-z ]+)', text)
        place = (match.group(1).strip() if match else '').removesuffix(' please').strip()
        if not place or place in ('it', 'that', 'this'):
            return ['Which place are you looking for?']
        verb = 'are' if place.endswith('s') and not place.endswith('ss') else 'is'
        return [f'The {place} {verb} down the corridor, the second door on the right.',
                'I can point you the way.']

    def _lost(self, text: str) -> list[str]:
        item = next((w for w in _words(text) if w in _LOST_ITEMS), '')
        thing = f'your {item}' if item else 'it'
        them = 'them' if item.endswith('s') and item not in ('glass',) else 'it'
        return [f'Let us find {thing}.', f'Where did you last have {them}?']

    def _follow_up(self, text: str, history: list[str]) -> list[str]:
        """A short answer that only makes sense after what was said before."""
        if not history:
            return []
        earlier = ' '.join(history[-6:]).lower()
        place = next((p for p in _PLACES if re.search(rf'\b{p}\b', text)), '')
        if place and _has(earlier, r'\b(lost|find|last have|where did)\b'):
            return [f'Then the {place} is the best place to start.', 'Look on the surfaces and under anything nearby.']
        return []

    def _story(self, text: str) -> list[str]:
        match = re.search(r'\b(?:story|tale) (?:about|of|on) (?:the |a |an )?([a-z ]+)', text)
        topic = match.group(1).strip() if match else 'a little robot'
        topic = re.sub(r'\b(please|now|today)\b', '', topic).strip() or 'a little robot'
        return [f'Once upon a time, there was a quiet town close to {self._the(topic)}.',
                f'Every morning, a curious child walked to {self._the(topic)} and listened to its stories.',
                'One day, the child found a small glowing stone that hummed like a song.',
                f'The stone remembered everything that had ever happened by {self._the(topic)}.',
                'The child kept it safe, and from then on the whole town came to listen.',
                'And that is the end of my story.']

    def _explanation(self, text: str) -> list[str]:
        how = re.search(r'\b(?:how (?:does|do)|explain how) (?:the |a |an )?([a-z ]+?) works?\b', text)
        what = re.search(r'\bexplain (?:to me )?(?:what )?([a-z ]+?)(?: is| are)?$', text)
        if how:
            opening = f'Let me explain how the {how.group(1).strip()} works.'
        elif what:
            opening = f'Let me explain {what.group(1).strip()}.'
        else:
            opening = 'Good question, let me explain.'
        return [opening,
                'In short, it comes down to a few simple parts working together.',
                'Each part does one small job, and together they make the whole thing work.',
                'If you want, I can go into more detail.']

    def _unknown(self, text: str) -> list[str]:
        topic = self._topic(text)
        if not topic:
            return ['Could you tell me a bit more?']
        return [f'You are asking about {topic}.', f'I do not know much about {topic}, but I can find out.']

    def _topic(self, text: str) -> str:
        text = _LEAD_INS.sub('', text.strip(' ?.!'))
        words = [w for w in _words(text)]
        content = [w for w in words if w not in _STOPWORDS]
        if not content:
            return ''
        first = words.index(content[0])
        if first > 0 and words[first - 1] in ('the', 'a', 'an', 'my', 'your'):
            first -= 1
        last = len(words) - 1 - words[::-1].index(content[-1])
        span = words[first:last + 1]
        if len(span) > 5:
            span = content[-4:]
        return _second_person(' '.join(span))

    @staticmethod
    def _the(topic: str) -> str:
        return topic if topic.split()[0] in ('the', 'a', 'an', 'my', 'your') else f'the {topic}'


class OfflineHandle(ReplyHandle):
    """A reply computed in advance and released once the stage clock passes the think time."""

    def __init__(self, sentences: list[str], tool_calls: list[ToolCall], clock: Callable[[], float] | None,
                 think_time_s: float):
        self._sentences = list(sentences)
        self._tool_calls = list(tool_calls)
        self._clock = clock
        self._ready_at = (clock() + think_time_s) if clock is not None and think_time_s > 0 else None
        self._cancelled = False

    def _ready(self) -> bool:
        return self._ready_at is None or self._clock() >= self._ready_at

    @property
    def done(self) -> bool:
        return self._cancelled or (self._ready() and not self._sentences and not self._tool_calls)

    @property
    def error(self) -> str | None:
        return None

    def poll(self) -> list[str]:
        if self._cancelled or not self._ready():
            return []
        out, self._sentences = self._sentences, []
        return out

    def poll_tool_calls(self) -> list[ToolCall]:
        if self._cancelled or not self._ready():
            return []
        out, self._tool_calls = self._tool_calls, []
        return out

    def cancel(self) -> None:
        self._cancelled = True
        self._sentences, self._tool_calls = [], []


def _allowed_gestures(tools: list[dict] | None) -> set[str]:
    for tool in tools or []:
        function = tool.get('function', {}) if isinstance(tool, dict) else {}
        if function.get('name') == GESTURE_TOOL:
            return set(function.get('parameters', {}).get('properties', {}).get('name', {}).get('enum', []))
    return set()


def _latest_user_text(messages: list[dict]) -> tuple[str, list[str]]:
    """The newest user line (without its speaker tag) and the texts of all earlier lines."""
    texts = []
    for message in messages or []:
        if not isinstance(message, dict) or message.get('role') not in ('user', 'assistant'):
            continue
        content = message.get('content')
        if isinstance(content, str):
            texts.append((message['role'], parse_line(content)[2]))
    for index in range(len(texts) - 1, -1, -1):
        if texts[index][0] == 'user':
            return texts[index][1], [t for _, t in texts[:index]]
    return '', [t for _, t in texts]
