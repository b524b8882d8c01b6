"""Prediction rows scored by tests/eval/test_score.py, test_report.py and test_cli.py: one of each
kind of answer."""


def row(index, gold, output, model="tuned"):
    skill = gold.split("(")[0]
    return {
        "index": index,
        "model": model,
        "split": "test",
        "skill": skill,
        "user": f"utterance {index}",
        "gold": gold,
        "output": output,
    }


ROWS = [
    row(0, 'weather(location="Berlin")', 'weather(location="Berlin")'),  # right
    row(1, 'weather(location="Oslo")', 'weather(location="Bergen")'),  # right name, wrong value
    row(2, 'timer(duration="5 minutes")', 'timer(duration="5 min'),  # a call attempt that does not parse
    row(3, "other()", "other()"),  # right
    row(4, 'weather(location="New York")', 'weather(location="new york")'),  # right only when lenient
    row(5, 'timer(duration="1 hour")', "Sorry, I can't set timers."),  # no call where one was needed
    row(6, "other()", 'news(topic="cats")'),  # a call where none was needed
]
