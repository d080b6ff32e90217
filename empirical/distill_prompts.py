"""Diverse prompts for on-policy distillation: topics x tasks x styles, plus plain-text openings.

Convention: p = target, q = draft; the target answers these prompts and the draft learns p's
next-token laws on the answers. measurements.md: prompt diversity, not steps, limited the last
distillation (140 MT-Bench questions resampled), so these lists cover MT-Bench's eight categories
(writing, roleplay, reasoning, math, coding, extraction, stem, humanities) without using its text.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Prompt", "make_prompts", "read_jsonl_prompts", "render_prompts"]

#: fraction of prompts given as raw text to continue (no chat template): the target also writes
#: prose and code outside a conversation, and those positions diversify the hidden states.
PLAIN_FRACTION = 0.15
#: stands for the user message when the chat template is rendered once
_MARKER = "\x00MESSAGE\x00"
#: how many draws are allowed per wanted prompt before giving up on uniqueness
_MAX_DRAWS_PER_PROMPT = 50


@dataclass(frozen=True)
class Prompt:
    """One prompt: its text, whether it is a chat turn or plain text, and its category."""

    text: str
    chat: bool
    category: str


TOPICS = (
    "black holes", "photosynthesis", "the French Revolution", "climate change", "machine learning",
    "the Roman Empire", "volcanoes", "the human immune system", "jazz music", "renewable energy",
    "the stock market", "ancient Egypt", "quantum computing", "coral reefs", "the printing press",
    "sleep", "honey bees", "the Silk Road", "electric cars", "the water cycle", "chess",
    "the Renaissance", "vaccines", "blockchain", "the Moon landing", "rainforests", "inflation",
    "the Cold War", "meditation", "dinosaurs", "3D printing", "the Olympic Games", "coffee",
    "plate tectonics", "social media", "the Industrial Revolution", "DNA", "urban gardening",
    "the Great Wall of China", "artificial intelligence ethics", "marathon training", "origami",
    "the Amazon river", "public libraries", "cryptography", "the history of the bicycle",
    "composting", "the solar system", "minimalism", "the Byzantine Empire", "antibiotics",
    "remote work", "the piano", "tsunamis", "baking bread", "the Internet", "game theory",
    "Shakespeare's plays", "wolves", "nuclear fusion", "personal budgeting", "the Aztecs",
    "wind turbines", "impressionist painting", "the Mediterranean diet", "earthquakes",
    "space telescopes", "the Vikings", "recycling plastics", "the theory of evolution", "yoga",
    "smartphones", "the Great Depression", "glaciers", "opera", "electric guitars", "tea",
    "microbes in the gut", "the Ottoman Empire", "self-driving cars", "the periodic table",
    "volunteering", "the Mayan calendar", "desert ecosystems", "public speaking", "robotics",
    "the history of money", "octopuses", "solar panels", "the Apollo program", "film noir",
    "the human brain", "supply chains", "the Enlightenment", "mountain climbing", "bridges",
    "language learning", "the Hubble constant", "sourdough", "the immune response to viruses",
    "ancient Greek philosophy", "photography", "mushrooms", "the electoral college",
    "ocean currents", "cybersecurity", "the Beatles", "hurricanes", "bees and pollination",
    "the history of medicine", "time management", "satellites", "the Mongol Empire",
    "architecture of cathedrals", "fermentation", "endangered species", "video game design",
    "the speed of light", "universal basic income", "folk tales", "the Arctic", "trains",
    "chocolate", "the microscope", "poetry", "public transport", "wildfires", "submarines",
    "the human heart", "open source software", "the Titanic", "birds migration", "soap",
    "the Industrial design of chairs", "electricity", "cloud computing", "the Samurai",
    "sustainable fashion", "the history of writing", "penguins", "comets", "negotiation",
    "the Panama Canal", "friendship", "gravity", "small businesses", "dreams", "the violin",
)

#: task templates by MT-Bench-like category; ``{t}`` and ``{u}`` are two different topics
TASKS = {
    "writing": (
        "Write a short blog post about {t}.", "Write a poem about {t}.",
        "Write a short story in which {t} plays a central role.",
        "Draft a persuasive essay arguing that everyone should learn about {t}.",
        "Write an email to a friend describing what you recently learned about {t}.",
        "Write a product description for a board game about {t}.",
        "Write a speech for a school assembly about {t}.",
        "Write a limerick that mentions {t} and {u}.",
        "Write the opening paragraph of a novel set in a world shaped by {t}.",
        "Write a letter to the editor about {t}.",
    ),
    "roleplay": (
        "Pretend you are a tour guide explaining {t} to visitors.",
        "Act as a grumpy professor who must teach a class on {t}.",
        "You are a detective whose latest case involves {t}. Describe your first clue.",
        "Imagine you are a journalist interviewing an expert on {t}. Ask three questions and answer them.",
        "Pretend to be a pirate explaining {t}.",
        "You are a sales assistant trying to sell me something related to {t}. Make your pitch.",
        "Act as a coach motivating a team by comparing their season to {t}.",
    ),
    "reasoning": (
        "What are the pros and cons of {t}?", "Compare {t} and {u}. How are they similar?",
        "What would happen if {t} had never existed?",
        "Give three arguments for and three against investing public money in {t}.",
        "What are common misconceptions about {t}, and why are they wrong?",
        "How could {t} change in the next fifty years?",
        "Explain the cause-and-effect chain behind {t}.",
    ),
    "stem": (
        "Explain {t} to a ten-year-old.", "Explain the science behind {t}.",
        "What are the key facts everyone should know about {t}?",
        "Describe how {t} works, step by step.", "List five surprising facts about {t}.",
        "What open questions do researchers still have about {t}?",
        "How would you design a simple experiment related to {t}?",
    ),
    "humanities": (
        "Summarize the history of {t}.", "How has {t} influenced culture and art?",
        "Discuss the ethical questions raised by {t}.",
        "Who are the most important people connected to {t}, and why?",
        "How do different countries view {t}?",
        "Write a short lesson plan for teaching high school students about {t}.",
    ),
    "extraction": (
        "Here is a sentence: 'In 2019 the city council of Lyon spent 4 million euros on {t}.' "
        "Extract the year, the place, the amount and the subject as JSON.",
        "Read this note and list every noun in it: 'Maria finished her report on {t} and sent it "
        "to the team before lunch.'",
        "Classify the following headline as positive, negative or neutral and explain why: "
        "'New study questions the benefits of {t}.'",
        "Turn this into a bullet list of key points: '{T} is widely discussed. Experts disagree "
        "about its future. Some see promise, others see risk, and most want more data.'",
    ),
}

#: endings that change length, register and format of the answer
STYLES = (
    "", "", "", " Keep it brief.", " Use bullet points.", " Answer in a formal tone.",
    " Make it funny.", " Use simple words.", " Include a concrete example.",
    " Answer in about 100 words.", " Write at least three paragraphs.", " Use a numbered list.",
    " End with a question for the reader.",
)

MATH_TEMPLATES = (
    "What is {a} * {b} + {c}? Show your work.",
    "A shop sells pencils at {a} cents each. How much do {b} pencils cost in dollars?",
    "Solve for x: {a}x + {b} = {c}.",
    "A train travels {a} km in {b} hours. What is its average speed?",
    "What is the sum of all integers from 1 to {a}?",
    "If a rectangle has sides {a} and {b}, what are its area and perimeter?",
    "A recipe needs {a} grams of flour for {b} people. How much flour is needed for {c} people?",
    "Is {a} a prime number? Explain how you checked.",
    "What is {a} percent of {c}?",
    "Find the greatest common divisor of {a} and {c}.",
)

#: "Write a {language} function that {action}." composes with the fixed tasks below
LANGUAGES = ("Python", "JavaScript", "C", "C++", "Rust", "Go", "Java", "TypeScript", "Ruby", "Haskell")
CODE_ACTIONS = (
    "reverses the words of a sentence", "finds the largest element of a list",
    "checks whether two strings are anagrams", "computes the factorial of n iteratively",
    "converts Celsius to Fahrenheit", "counts the vowels in a string", "flattens a nested list",
    "returns the n-th prime number", "sorts a list of records by a given key",
    "parses a date string in ISO format", "computes the moving average of a sequence",
    "validates a password against simple rules", "finds the most common element of a list",
    "implements binary search", "rotates a matrix by 90 degrees", "removes vowels from a string",
    "computes the edit distance between two words", "generates all subsets of a set",
    "checks whether parentheses in a string are balanced", "converts a number to Roman numerals",
)
CODING_TASKS = (
    "Write a Python function that checks whether a string is a palindrome.",
    "Write a Python function that returns the n-th Fibonacci number.",
    "Write a SQL query that finds the five customers with the highest total order value.",
    "Explain the difference between a list and a tuple in Python.",
    "Write a JavaScript function that removes duplicates from an array.",
    "Write a Python class for a simple bank account with deposit and withdraw methods.",
    "How do I reverse a linked list? Give code in Python.",
    "Write a bash command that counts the lines of every .txt file in a folder.",
    "Explain what a hash table is and when to use one.",
    "Write a Python function that merges two sorted lists.",
    "Write a C function that computes the length of a string without strlen.",
    "Explain recursion with a small Python example.",
    "Write a regular expression that matches email addresses, and explain it.",
    "Write Python code that reads a CSV file and prints the average of a column.",
    "What is the time complexity of binary search? Explain with code.",
    "Write a Python function that counts word frequencies in a text.",
    "Explain the difference between git merge and git rebase.",
    "Write a Python script that renames all files in a folder to lowercase.",
    "Write a function that checks whether a number is prime, in Python.",
    "Explain what an API is to a beginner, with a small example request.",
)

#: raw-text openings continued without the chat template
PLAIN_OPENINGS = (
    "{T} is", "The history of {t} begins", "In this article, we take a closer look at {t}.",
    "Chapter 1\n\nThe morning I first heard about {t},", "Frequently asked questions about {t}\n\nQ:",
    "Here are some tips for beginners interested in {t}:\n\n1.", "Abstract. We study {t}",
    "Dear diary,\nToday I learned about {t}", "def main():\n    \"\"\"Print facts about {t}.\"\"\"\n",
    "Welcome to our podcast! Today's episode is about {t}.", "Lecture notes: {t}\n\nIntroduction\n",
    "Once upon a time, in a village known for {t},", "Review: a new book about {t}\n\n",
    "{T} and {u}: a comparison\n\n",
)


def make_prompts(num_prompts: int, *, seed: int) -> list[Prompt]:
    """Draw distinct prompts from the topic, task, style and opening lists.

    Parameters
    ----------
    num_prompts : int
        How many prompts; each is distinct from the others.
    seed : int
        Seed of the Python ``random.Random`` that composes them; the same seed gives the same list.

    Returns
    -------
    list of Prompt
        About ``PLAIN_FRACTION`` of them plain text, the rest chat turns spread over the categories
        (writing, roleplay, reasoning, stem, humanities, extraction, math, coding).

    Raises
    ------
    ValueError
        If ``num_prompts`` is negative or more than the lists can make distinct.

    Examples
    --------
    >>> prompts = make_prompts(3, seed=0)
    >>> len(prompts), len({p.text for p in prompts})
    (3, 3)
    """
    if num_prompts < 0:
        raise ValueError(f"`num_prompts` must be >= 0; got {num_prompts}.")
    rng = random.Random(seed)
    prompts: dict[str, Prompt] = {}
    for _ in range(num_prompts * _MAX_DRAWS_PER_PROMPT):
        if len(prompts) == num_prompts:
            break
        prompt = _draw(rng)
        prompts.setdefault(prompt.text, prompt)
    if len(prompts) < num_prompts:
        raise ValueError(f"`num_prompts` must be at most about {len(prompts)} (distinct prompts); got {num_prompts}.")
    return list(prompts.values())


def read_jsonl_prompts(path: str | Path, *, category: str = "heldout") -> list[Prompt]:
    """Read chat prompts from JSON lines with a ``"turns"`` list (MT-Bench format): first turns only.

    Parameters
    ----------
    path : str | Path
    category : str, optional

    Returns
    -------
    list[Prompt]

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ...: line ... must have a non-empty list 'turns'
        of strings.
    """
    prompts = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            turns = record.get("turns")
            if not turns or not isinstance(turns[0], str):
                raise ValueError(f"{path}: line {line_number} must have a non-empty list 'turns' of strings.")
            prompts.append(Prompt(turns[0], True, record.get("category", category)))
    return prompts


def render_prompts(prompts: list[Prompt], tokenizer) -> list[list[int]]:
    """Token ids of each prompt: chat turns through the tokenizer's chat template, plain text as is.

    The template is rendered once around a marker and the texts are tokenised in one batched call
    (about 30 times faster than one template call per prompt); a mismatch with a direct rendering
    of the first chat prompt raises ``ValueError``.

    Parameters
    ----------
    prompts : list[Prompt]
    tokenizer : transformers tokenizer
        The tokenizer.

    Returns
    -------
    list[list[int]]

    Raises
    ------
    ValueError
        On bad input (the message names the rule): The tokenizer's chat template is not of the form
        prefix + message + suffix.
    """
    before, after = _template_around_marker(tokenizer)
    texts = [before + p.text + after if p.chat else p.text for p in prompts]
    first_chat = next((i for i, p in enumerate(prompts) if p.chat), None)
    if first_chat is not None and texts[first_chat] != _chat_text(tokenizer, prompts[first_chat].text):
        raise ValueError("the tokenizer's chat template is not of the form prefix + message + suffix.")
    return tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []


def _chat_text(tokenizer, message: str) -> str:
    """One user turn through the chat template, ready for the assistant's answer."""
    return tokenizer.apply_chat_template([{"role": "user", "content": message}], tokenize=False,
                                         add_generation_prompt=True)


def _template_around_marker(tokenizer) -> tuple[str, str]:
    """The chat template's text before and after the user message."""
    before, marker, after = _chat_text(tokenizer, _MARKER).partition(_MARKER)
    if not marker:
        raise ValueError("the tokenizer's chat template dropped the user message.")
    return before, after


def _draw(rng: random.Random) -> Prompt:
    """One random prompt (possibly a repeat; the caller keeps distinct ones)."""
    t, u = rng.sample(TOPICS, 2)
    fill = {"t": t, "u": u, "T": t[:1].upper() + t[1:]}
    if rng.random() < PLAIN_FRACTION:
        return Prompt(rng.choice(PLAIN_OPENINGS).format(**fill), False, "plain")
    category = rng.choice((*TASKS, "math", "coding"))
    if category == "math":
        a, b, c = rng.randint(2, 99), rng.randint(2, 30), rng.randint(100, 999)
        text = rng.choice(MATH_TEMPLATES).format(a=a, b=b, c=c)
    elif category == "coding" and rng.random() < 0.7:
        text = f"Write a {rng.choice(LANGUAGES)} function that {rng.choice(CODE_ACTIONS)}."
    elif category == "coding":
        text = rng.choice(CODING_TASKS)
    else:
        text = rng.choice(TASKS[category]).format(**fill)
    return Prompt(text + rng.choice(STYLES), True, category)
