"""The scale benchmarks' site: N catalogue pages `/item/<id>`, about 4 KB of props each.

The props of every page are written beforehand to `data/items/<id>.json` (the same bytes
for isr and for the Next.js copy of the site, see next_build.py), so both engines render
identical data and neither measures the cost of making it up. The text is drawn from a
vocabulary with Zipf-like word frequencies, seeded by the id: varied like real copy, so
compression ratios are realistic, and the same on every run.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

ROUTE = "/item/"
GROUPS = 100  # tags per page: "item" and f"group:{id % GROUPS}"

_VOCABULARY = """
the of and to a in for is on that by this with you it not or be are from at as your all have
new more an was we will home can us about if page my has search free but our one other do no
information time they site he up may what which their news out use any there see only so his
when contact here business who web also now help get pm view online first am been would how
were me services some these click its like service than find price date back top people had
list name just over state year day into email two health world next used go work last most
products music buy data make them should product system post her city add policy number such
please available copyright support message after best software then jan good video well where
info rights public books high school through each links she review years order very privacy
book items company read group need many user said does set under general research university
january mail full map reviews program life know games way days management part could great
united hotel real item international center ebay must store travel comments made development
report off member details line terms before hotels did send right type because local those
using results office education national car design take posted internet address community
within states area want phone shipping reserved subject between forum family long based code
show even black check special prices website index being women much sign file link open today
technology south case project same pages version section own found sports house related
security both county american photo game members power while care network down computer
systems three total place end following download him without per access think north resources
current posts big media law control water history pictures size art personal since including
guide shop directory board location change white text small rating rate government children
during usa return students shopping account times sites level digital profile previous form
events love old john main call hours image department title description non insurance another
why shall property class still money quality every listing content country private little
visit save tools low reply customer december compare movies include college value article york
man card jobs provide food source author different press learn sale around print course job
canada process teen room stock training too credit point join science men categories advanced
west sales look english left team estate box conditions select windows photos thread week
category note live large gallery table register however june october november market library
really action start series model features air industry plan human provided yes required second
hot accessories cost movie forums march la september better say questions july yahoo going
medical test friend come dec server study application cart staff articles san feedback again
play looking issues april never users complete street topic comment financial things working
against standard tax person below mobile less got blog party payment equipment login student
"""
_WORDS = _VOCABULARY.split()
# Zipf-like word frequencies (weight 1/rank), as in natural text.
_CUM_WEIGHTS = list(itertools.accumulate(1 / rank for rank in range(1, len(_WORDS) + 1)))
_CATEGORIES = ["Garden", "Kitchen", "Outdoor", "Office", "Lighting", "Storage", "Audio",
               "Cycling", "Camping", "Bathroom", "Workshop", "Travel"]
_SPEC_NAMES = ["Width", "Height", "Depth", "Weight", "Material", "Colour", "Warranty", "Origin",
               "Power", "Capacity", "Finish", "Model year"]
_FIRST = ["Ada", "Ben", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
          "Kemal", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tara"]
_LAST = ["Almeida", "Brandt", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ivanova",
         "Jensen", "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Petrov", "Rossi", "Silva"]


def _words(rng: random.Random, n: int) -> list[str]:
    return rng.choices(_WORDS, cum_weights=_CUM_WEIGHTS, k=n)


def _sentence(rng: random.Random, low: int, high: int) -> str:
    text = " ".join(_words(rng, rng.randint(low, high)))
    return text[0].upper() + text[1:] + rng.choice(".....!?")


def _paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(_sentence(rng, 6, 18) for _ in range(sentences))


def title(item_id: int) -> str:
    """The item's title: its own seed, so that other pages can link to it by name."""
    rng = random.Random(f"title:{item_id}")
    return " ".join(word.capitalize() for word in _words(rng, rng.randint(2, 5)))


def props(item_id: int, count: int) -> dict[str, Any]:
    """The page data of `/item/<item_id>` in a site of `count` items: about 4 KB as JSON."""
    rng = random.Random(item_id)
    return {
        "id": item_id,
        "title": title(item_id),
        "sku": f"SKU-{item_id:07d}",
        "category": rng.choice(_CATEGORIES),
        "price": f"{rng.uniform(3, 900):.2f}",
        "summary": _sentence(rng, 16, 28),
        "description": [_paragraph(rng, rng.randint(4, 6)) for _ in range(6)],
        "features": [" ".join(_words(rng, rng.randint(3, 7))).capitalize() for _ in range(10)],
        "specs": [{"name": name, "value": f"{rng.randint(1, 250)} {rng.choice(_WORDS)}"}
                  for name in rng.sample(_SPEC_NAMES, 10)],
        "reviews": [{"author": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                     "rating": rng.randint(1, 5), "text": _paragraph(rng, 3)} for _ in range(5)],
        "related": [{"id": other, "title": title(other)}
                    for other in (rng.randint(1, count) for _ in range(6))],
    }


def write_data(folder: Path, count: int) -> int:
    """Write data/items/<id>.json for ids 1..count under `folder`; return the bytes written."""
    items = folder / "data" / "items"
    items.mkdir(parents=True, exist_ok=True)
    total = 0
    for item_id in range(1, count + 1):
        text = json.dumps(props(item_id, count), separators=(",", ":"))
        (items / f"{item_id}.json").write_text(text)
        total += len(text)
    return total


_PAGE_MODULE = '''"""A catalogue item, one of {count:,}: its props are read from data/items/<id>.json."""

import json
from pathlib import Path
from typing import Any

revalidate = False  # nothing goes stale during a benchmark
DATA = Path({data!r})
COUNT = {count}


def get_static_paths() -> list[dict[str, str]]:
    return [{{"id": str(n)}} for n in range(1, COUNT + 1)]


def get_static_props(ctx: Any) -> dict[str, Any]:
    item_id = ctx.params["id"]
    if not (item_id.isascii() and item_id.isdigit() and 1 <= int(item_id) <= COUNT):
        return {{"not_found": True}}
    item = json.loads((DATA / f"{{int(item_id)}}.json").read_text())
    return {{"props": {{"item": item}}, "tags": ["item", f"group:{{int(item_id) % {groups}}}"]}}
'''

# The markup next_build.py's page component renders too.
_TEMPLATE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ item.title }} | Catalogue</title></head>
<body>
<main class="item">
<h1>{{ item.title }}</h1>
<p class="meta">{{ item.sku }} · {{ item.category }} · ${{ item.price }}</p>
<p class="summary">{{ item.summary }}</p>
{% for paragraph in item.description %}<p>{{ paragraph }}</p>{% endfor %}
<h2>Features</h2>
<ul>{% for feature in item.features %}<li>{{ feature }}</li>{% endfor %}</ul>
<h2>Specifications</h2>
<table>{% for spec in item.specs %}<tr><th>{{ spec.name }}</th><td>{{ spec.value }}</td></tr>{% endfor %}</table>
<h2>Reviews</h2>
{% for review in item.reviews %}<blockquote><p>{{ review.text }}</p>\
<footer>{{ review.author }}, {{ review.rating }}/5</footer></blockquote>{% endfor %}
<h2>Related</h2>
<ul>{% for other in item.related %}<li><a href="/item/{{ other.id }}">{{ other.title }}</a></li>{% endfor %}</ul>
</main>
</body>
</html>
"""


def write_isr_site(folder: Path, count: int) -> int:
    """An isr site of `count` item pages in `folder` (data included); return the data's bytes."""
    size = write_data(folder, count)
    pages = folder / "pages" / "item"
    pages.mkdir(parents=True, exist_ok=True)
    data = str((folder / "data" / "items").resolve())
    (pages / "[id].py").write_text(_PAGE_MODULE.format(count=count, data=data, groups=GROUPS))
    (pages / "[id].html").write_text(_TEMPLATE)
    return size
