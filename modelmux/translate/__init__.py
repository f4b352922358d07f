"""Translation between the OpenAI API shapes and other providers' native APIs.

Library code for provider plugins: each module converts one upstream API both
ways (requests, answers, streams) without knowing how that upstream is reached.
"""
