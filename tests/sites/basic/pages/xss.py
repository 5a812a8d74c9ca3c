"""Props that try to break out of the embedded data script. PAGE-SOURCE-MARKER-8f3b"""
from pages._lib.control import _log

revalidate = 60

EVIL = "</script><script>alert('pwned')</script><!-- \u2028\u2029 & \"q\" '</SCRIPT >"


async def get_static_props(ctx):
    _log("xss")
    return {
        "props": {
            "evil": EVIL,
            "nested": {"</script><b>key": ["<img src=x onerror=alert(1)>", "&amp;", "\u2028"]},
        }
    }
