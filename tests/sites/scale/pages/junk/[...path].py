"""Any path under /junk renders (a blocking catch-all), as a crawler's junk paths would."""

import hashlib

revalidate = False


def get_static_props(ctx):
    seed = hashlib.sha256("/".join(ctx.params["path"]).encode()).hexdigest()
    words = [seed[i : i + 6] for i in range(0, 60, 6)]
    return {"props": {"name": "/".join(ctx.params["path"]), "text": " ".join(words * 40)}, "tags": ["junk"]}
