"""A batch of deliveries as Discord messages (pure: values in, values out).

``batch`` decides which messages a batch becomes (one per chunk of assets, one summary for a
large burst, one per scheduled post) and what each carries (mentions, nonce); ``embeds`` lays
a message out as Discord embeds; ``text`` writes its words; ``message`` is the result, in the
Discord API's own shape, so the bot and the webhook send the same thing. Another layout (a
components v2 gallery) is a module beside ``embeds``; templates for the words, beside ``text``.
"""
