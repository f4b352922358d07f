"""Embeddings: vectors for a few texts, and which text is closest to a question (cosine similarity)."""

import math
import os

from openai import OpenAI

client = OpenAI(
    base_url=os.getenv("OPENAI_BASE_URL", "http://127.0.0.1:3000/v1"),
    api_key=os.getenv("OPENAI_API_KEY", "unused"),  # any value unless the gateway sets server.api_keys
)
# An embedding model the gateway serves (a [models] name such as text-embedding-005 on Vertex AI).
model = os.getenv("OPENAI_EMBEDDING_MODEL", "echo")

documents = [
    "The cat sleeps on the warm windowsill.",
    "Interest rates rose again this quarter.",
    "A kitten naps in the sun by the window.",
]
question = "Where does the cat sleep?"

# One request for all inputs; the SDK asks for base64 and decodes it into floats itself.
result = client.embeddings.create(model=model, input=[question, *documents])
vectors = [item.embedding for item in result.data]  # in input order


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


scores = sorted(((cosine(vectors[0], v), doc) for v, doc in zip(vectors[1:], documents, strict=True)), reverse=True)
print(f"{len(vectors)} vectors of {len(vectors[0])} dimensions from {result.model}")
for score, doc in scores:
    print(f"{score:.3f}  {doc}")
print(f"[{result.usage.prompt_tokens} prompt tokens]")
