"""The load-time check of a config's templates: each compiled, then rendered once against
sample data of its kind, so a syntax error, an unknown name, filter or attribute, or anything
the sandbox forbids is a config error (``file:line: rules[2].messages.content: …``), never a
failure at send time."""

from __future__ import annotations

from collections.abc import Iterator

from sidecar.messages.environment import TemplateProblem, render_source
from sidecar.messages.render import Words
from sidecar.messages.samples import sample_context
from sidecar.messages.templates import KEYS, Templates


def template_problems(
    templates: Templates, kind: str, words: Words
) -> Iterator[tuple[str, int, TemplateProblem]]:
    """(key, index in a list of contents, problem) of each template that fails; ``kind`` is
    the kind of message it writes (``samples.MESSAGE_KINDS``)."""
    context = sample_context(kind, words)
    for key in KEYS:
        sources = templates.sources(key)
        for index, source in enumerate(sources):
            try:
                render_source(source, context, words.locale, words.timezone)
            except TemplateProblem as problem:
                yield key, index, problem
