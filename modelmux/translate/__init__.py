"""Translation between the OpenAI API shapes and other API shapes.

``anthropic``: library code for provider plugins (an upstream's native API both ways).
``responses*``: the host's Responses API served over Chat Completions (request,
response and stream sides).
"""
