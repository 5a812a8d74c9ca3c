"""Reports the variables of the site's .env as the function sees them. FUNC-SOURCE-MARKER-3d7e"""
import os


async def handler(request, response):
    response.json({
        "FROM_DOTENV": os.environ.get("FROM_DOTENV"),
        "OVERRIDE_ME": os.environ.get("OVERRIDE_ME"),
    })
